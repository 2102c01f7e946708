# Terraform and provider versions. The provider is pinned to one major version so that a new
# major release (which may change resource arguments) is taken on deliberately. The state goes to
# S3 (the state names the instance and its role: keep it encrypted and locked); the bucket, key
# and region are given at `terraform init -backend-config=FILE`, from a file kept outside this
# repository.
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}
