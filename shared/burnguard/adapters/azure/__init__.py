"""Azure adapters (clients passed in): Key Vault secrets, and next Blob storage and the VM controller."""
