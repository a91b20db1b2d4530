terraform {
  # 1.9: validation blocks that refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # cloudfunctions2, firestore databases and workload identity providers are GA in 6.x.
      # Not validated offline (no provider mirror): tests/infra parses and checks it.
      version = ">= 6.10, < 8.0"
    }
  }
}
