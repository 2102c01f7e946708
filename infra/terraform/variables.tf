# Inputs. Nothing account-specific has a default: the region, network, image, database and
# bucket are always given by the operator (e.g. in a terraform.tfvars kept outside this repository).

variable "region" {
  description = "AWS region to deploy into, e.g. eu-west-1."
  type        = string
}

variable "name" {
  description = "Prefix for resource names and the Name tag."
  type        = string
  default     = "solvency"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2 to 31 characters of lower-case letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource (through the provider's default_tags)."
  type        = map(string)
  default     = {}
}

# --- The instance -------------------------------------------------------------------------------

variable "ami_id" {
  description = "The prepared AMI for the parent (see user_data.sh.tftpl and infra/README.md: aws-nitro-enclaves-cli, the solvency binaries, the EIF and the systemd units are baked in; nothing is downloaded at boot)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  description = "A Nitro-based instance type that supports Nitro Enclaves, with enough vCPUs for the enclave (allocator.yaml's cpu_count) and the parent. m6i.xlarge (4 vCPUs, 16 GiB) gives the enclave 2 vCPUs and 4 GiB; see infra/enclave/allocator.yaml for sizing."
  type        = string
  default     = "m6i.xlarge"

  validation {
    # Burstable (t*) and first-generation Graviton (a1) types do not support enclaves, and on x86
    # an enclave takes whole cores, so types with 2 vCPUs or fewer leave nothing for the parent.
    condition     = !can(regex("^(t[0-9]|a1)", var.instance_type)) && !can(regex("\\.(nano|micro|small|medium|large)$", var.instance_type))
    error_message = "instance_type must support Nitro Enclaves and have at least 4 vCPUs (not t*, not a1, not *.large or smaller)."
  }
}

variable "subnet_id" {
  description = "Private subnet for the parent instance (no public IP is assigned). Its VPC is used for the security group and the S3 endpoint."
  type        = string
}

variable "ssh_key_name" {
  description = "Name of an EC2 key pair for administrative SSH, or null for none. SSH is reachable only from admin_ssh_cidrs."
  type        = string
  default     = null
}

variable "admin_ssh_cidrs" {
  description = "IPv4 CIDRs allowed to reach SSH (port 22). Empty (the default): no SSH ingress at all."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.admin_ssh_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "admin_ssh_cidrs must be IPv4 CIDRs, none of them /0 (0.0.0.0/0 is never allowed)."
  }
}

variable "root_volume_size_gib" {
  description = "Size of the encrypted root volume in GiB (operating system, binaries, EIF)."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size_gib >= 16
    error_message = "root_volume_size_gib must be at least 16."
  }
}

variable "store_volume_size_gib" {
  description = "Size of the encrypted data volume holding the bundle store and the Groth16 keys, in GiB. Each round keeps every user's inclusion proof (about 3.8 KB per account) and the keys file is about 300 MB."
  type        = number
  default     = 100

  validation {
    condition     = var.store_volume_size_gib >= 10
    error_message = "store_volume_size_gib must be at least 10."
  }
}

variable "kms_key_arn" {
  description = "ARN of an existing KMS key to encrypt the root and data volumes, or null to create a dedicated key (with rotation)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or null."
  }
}

# --- The HTTP API (behind a TLS terminator) ---------------------------------------------------

variable "http_port" {
  description = "Port of the parent's HTTP API ([http] listen in parent.toml). It has no TLS: only the TLS terminator (e.g. an ALB) may reach it."
  type        = number
  default     = 8080

  validation {
    condition     = var.http_port >= 1024 && var.http_port <= 65535
    error_message = "http_port must be an unprivileged port (1024-65535): the parent runs as an unprivileged user."
  }
}

variable "http_ingress_security_group_ids" {
  description = "Security groups (e.g. the ALB's) allowed to reach the HTTP API port."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.http_ingress_security_group_ids : can(regex("^sg-[0-9a-f]+$", id))])
    error_message = "http_ingress_security_group_ids must be security group IDs (sg-...)."
  }
}

variable "http_ingress_cidrs" {
  description = "IPv4 CIDRs (e.g. the TLS terminator's subnets) allowed to reach the HTTP API port. Never 0.0.0.0/0: the API speaks plain HTTP."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.http_ingress_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "http_ingress_cidrs must be IPv4 CIDRs, none of them /0 (0.0.0.0/0 is never allowed)."
  }
}

# --- The database the enclave reads (through the parent's proxy) -------------------------------

variable "database_cidrs" {
  description = "IPv4 CIDRs of the Postgres endpoint(s) the enclave reads through the parent's proxy (the only destination besides S3). Prefer a /32 per database host."
  type        = list(string)

  validation {
    condition     = length(var.database_cidrs) > 0 && alltrue([for c in var.database_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "database_cidrs must be a non-empty list of IPv4 CIDRs, none of them /0 (0.0.0.0/0 is never allowed)."
  }
}

variable "database_port" {
  description = "TCP port of the Postgres endpoint."
  type        = number
  default     = 5432

  validation {
    condition     = var.database_port >= 1 && var.database_port <= 65535
    error_message = "database_port must be a TCP port (1-65535)."
  }
}

# --- Publication ---------------------------------------------------------------------------------

variable "publication_bucket" {
  description = "Name of the existing S3 bucket the rounds are published to (managed outside this module)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.publication_bucket))
    error_message = "publication_bucket must be an S3 bucket name (not an ARN, no s3:// prefix)."
  }
}

variable "publication_prefix" {
  description = "Key prefix under which rounds are published: s3://BUCKET/PREFIX/rounds/<n>/bundle.cbor. The instance may write only under it."
  type        = string
  default     = "solvency"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9]$", var.publication_prefix)) && !strcontains(var.publication_prefix, "*")
    error_message = "publication_prefix must be a non-empty key prefix without a leading or trailing '/' and without '*'."
  }
}

variable "publication_kms_key_arn" {
  description = "If the publication bucket encrypts with a customer-managed KMS key (SSE-KMS), its ARN: the instance is then allowed to use that key, and only that key. Null for SSE-S3."
  type        = string
  default     = null

  validation {
    condition     = var.publication_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.publication_kms_key_arn))
    error_message = "publication_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "s3_vpc_endpoint_id" {
  description = "ID of an existing S3 gateway VPC endpoint serving the parent's subnet, or null to create one on route_table_ids."
  type        = string
  default     = null

  validation {
    condition     = var.s3_vpc_endpoint_id == null || can(regex("^vpce-[0-9a-f]+$", var.s3_vpc_endpoint_id))
    error_message = "s3_vpc_endpoint_id must be a VPC endpoint ID (vpce-...) or null."
  }
}

variable "route_table_ids" {
  description = "Route tables to associate with the S3 gateway endpoint when this module creates it (the parent subnet's route table; give that subnet its own table, since the endpoint policy admits only the publication prefix)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.route_table_ids : can(regex("^rtb-[0-9a-f]+$", id))])
    error_message = "route_table_ids must be route table IDs (rtb-...)."
  }
}
