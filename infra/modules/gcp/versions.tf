terraform {
  # 1.9: validation blocks that refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The version the schema check (tests/infra/test_schema.py) checked this module against:
      # the schema carried by cdktn-provider-google 21.1.0 (.ci/setup extracts it). Move both together.
      version = "8.7.0"
    }
  }
}
