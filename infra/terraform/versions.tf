# Terraform and provider versions. The provider is pinned to one major version so that a new
# major release (which may change resource arguments) is taken on deliberately. There is no
# backend block: choose your own state backend (with encryption and locking) at `terraform init`,
# e.g. `terraform init -backend-config=...` with a backend file kept outside this repository.
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}
