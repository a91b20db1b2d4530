terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 6.0"
    }
    google = {
      source  = "hashicorp/google"
      version = "8.7.0" # schema-checked (modules/gcp/versions.tf)
    }
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "5.10.0" # schema-checked (modules/azure/versions.tf)
    }
  }
}

provider "aws" {
  region = var.aws_region
}

provider "google" {
  project = var.gcp_project_id
  region  = var.gcp_region
}

provider "azurerm" {
  features {}
  subscription_id = var.azure_subscription_id
  # The module's storage accounts have shared keys disabled: data-plane calls use Entra ID.
  storage_use_azuread = true
}
