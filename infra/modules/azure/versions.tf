terraform {
  # 1.9: validation blocks that refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # azurerm_function_app_flex_consumption (Flex Consumption, identity-based deployment
      # storage) is in 4.x. Not validated offline (no provider mirror): tests/infra parses it.
      version = ">= 4.30, < 5.0"
    }
  }
}
