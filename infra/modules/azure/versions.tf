terraform {
  # 1.9: validation blocks that refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # The version the schema check (tests/infra/test_schema.py) checked this module against:
      # the schema carried by cdktn-provider-azurerm 18.9.0 (.ci/setup extracts it). Move both together.
      version = "5.10.0"
    }
  }
}
