terraform {
  # 1.9: validation blocks that refer to other variables; 1.7: mock providers in tests/.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Validated offline against 5.100. 6.x changes the provider's region model; move the
      # upper bound once the module is planned against it (and see README: Function URL
      # permissions, `invoked_via_function_url` needs >= 6.29).
      version = ">= 5.80, < 6.0"
    }
  }
}
