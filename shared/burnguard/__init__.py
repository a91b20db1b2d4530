"""burnguard: guard cloud GPU spend per tag on AWS, Google Cloud and Azure.

The package root is the core: it imports no cloud SDK. Cloud SDKs live in
``burnguard.adapters.<cloud>`` only, and take their clients as parameters.
"""

__version__ = "0.1.0"
