# The parent instance of the solvency enclave and what it needs, with nothing more reachable than
# the appliance uses: the Postgres endpoint (the enclave reads it through the parent's proxy), the
# publication prefix in S3 (through a gateway endpoint), and the HTTP API from the TLS terminator.
#
# Traffic that security groups do not filter, so needs no rule: the instance metadata service
# (169.254.169.254, IMDSv2 only, see metadata_options), the Amazon DNS resolver and the Amazon
# Time Sync Service (169.254.169.123). The enclave has no network of its own: it talks to the
# parent over vsock, which is not IP traffic.

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_subnet" "parent" {
  id = var.subnet_id
}

locals {
  vpc_id                  = data.aws_subnet.parent.vpc_id
  publication_objects_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.publication_bucket}/${var.publication_prefix}/*"
  kms_key_arn             = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.volumes[0].arn
  s3_prefix_list_id       = var.s3_vpc_endpoint_id != null ? data.aws_vpc_endpoint.s3[0].prefix_list_id : aws_vpc_endpoint.s3[0].prefix_list_id
  # Where user_data mounts the data volume; the systemd units and parent.toml use paths below it.
  store_mount = "/var/lib/solvency"
}

# --- Encryption key for the volumes ------------------------------------------------------------

# Created only when no key is given. Without an explicit policy the key gets the default key
# policy (the account's administrators manage it; EC2 uses it for EBS through grants).
resource "aws_kms_key" "volumes" {
  count                   = var.kms_key_arn == null ? 1 : 0
  description             = "${var.name}: EBS volumes of the solvency parent (root and bundle store)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "volumes" {
  count         = var.kms_key_arn == null ? 1 : 0
  name          = "alias/${var.name}-volumes"
  target_key_id = aws_kms_key.volumes[0].key_id
}

# --- S3 gateway endpoint: the only way out to the publication bucket --------------------------

data "aws_vpc_endpoint" "s3" {
  count = var.s3_vpc_endpoint_id != null ? 1 : 0
  id    = var.s3_vpc_endpoint_id
}

# The endpoint policy admits only the parent's role and only the publication prefix, so even a
# compromised host with other credentials cannot copy data to another bucket through it. It applies
# to everything routed through route_table_ids: give the parent's subnet its own route table.
data "aws_iam_policy_document" "s3_endpoint" {
  statement {
    sid       = "PublicationPrefixOnly"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = [local.publication_objects_arn]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.parent.arn]
    }
  }
}

resource "aws_vpc_endpoint" "s3" {
  count             = var.s3_vpc_endpoint_id == null ? 1 : 0
  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${data.aws_region.current.name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
  policy            = data.aws_iam_policy_document.s3_endpoint.json

  tags = {
    Name = "${var.name}-s3"
  }

  lifecycle {
    precondition {
      condition     = length(var.route_table_ids) > 0
      error_message = "Creating the S3 gateway endpoint needs route_table_ids (or give s3_vpc_endpoint_id)."
    }
  }
}

# --- Security group ------------------------------------------------------------------------------

# Terraform removes the allow-all egress rule AWS adds to a new security group, so the rules
# below are the only ones. They are separate resources (one per CIDR or source group), never
# inline blocks, so that each is visible on its own in the plan.
resource "aws_security_group" "parent" {
  name_prefix = "${var.name}-parent-"
  description = "Solvency parent: HTTP API from the TLS terminator; egress to Postgres and S3 only"
  vpc_id      = local.vpc_id

  tags = {
    Name = "${var.name}-parent"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "database" {
  for_each          = toset(var.database_cidrs)
  security_group_id = aws_security_group.parent.id
  description       = "Postgres, read by the enclave through the parent's proxy"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.database_port
  to_port           = var.database_port
}

resource "aws_vpc_security_group_egress_rule" "s3" {
  security_group_id = aws_security_group.parent.id
  description       = "S3 (publication) through the gateway endpoint"
  prefix_list_id    = local.s3_prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "http_from_security_group" {
  for_each                     = toset(var.http_ingress_security_group_ids)
  security_group_id            = aws_security_group.parent.id
  description                  = "HTTP API from the TLS terminator"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
}

resource "aws_vpc_security_group_ingress_rule" "http_from_cidr" {
  for_each          = toset(var.http_ingress_cidrs)
  security_group_id = aws_security_group.parent.id
  description       = "HTTP API from the TLS terminator"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.http_port
  to_port           = var.http_port
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.admin_ssh_cidrs)
  security_group_id = aws_security_group.parent.id
  description       = "Administrative SSH"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

# --- IAM: publish rounds, nothing else ---------------------------------------------------------

data "aws_iam_policy_document" "assume_role" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "parent" {
  name_prefix        = "${var.name}-parent-"
  description        = "Solvency parent: publishes rounds to s3://${var.publication_bucket}/${var.publication_prefix}/"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
}

# PutObject uploads a round's files with If-None-Match: *, so S3 itself refuses to overwrite.
# GetObject lets the publisher read an existing object's SHA-256 checksum (HeadObject), to tell
# "already published by an earlier run" from "a different file under the same name". No
# ListBucket: the publisher never lists.
data "aws_iam_policy_document" "publish" {
  statement {
    sid       = "PublishRounds"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = [local.publication_objects_arn]
  }

  dynamic "statement" {
    for_each = var.publication_kms_key_arn != null ? [var.publication_kms_key_arn] : []
    content {
      sid       = "PublicationBucketKey"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "publish" {
  name   = "publish-rounds"
  role   = aws_iam_role.parent.id
  policy = data.aws_iam_policy_document.publish.json
}

resource "aws_iam_instance_profile" "parent" {
  name_prefix = "${var.name}-parent-"
  role        = aws_iam_role.parent.name
}

# --- The instance and its volumes --------------------------------------------------------------

resource "aws_instance" "parent" {
  ami                         = var.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = [aws_security_group.parent.id]
  iam_instance_profile        = aws_iam_instance_profile.parent.name
  key_name                    = var.ssh_key_name
  associate_public_ip_address = false

  # user_data mounts the data volume and creates the store's directories; it installs nothing
  # (there is no route to the internet). See the template for how the AMI must be prepared.
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    volume_id   = aws_ebs_volume.store.id
    store_mount = local.store_mount
  })
  user_data_replace_on_change = true

  enclave_options {
    enabled = true
  }

  # IMDSv2 only, and a hop limit of 1 so that nothing one network hop away (a container) can
  # reach the instance's credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gib
    encrypted             = true
    kms_key_id            = local.kms_key_arn
    delete_on_termination = true
  }

  tags = {
    Name = "${var.name}-parent"
  }
}

# The bundle store and the Groth16 keys live on their own volume, so they outlive the instance:
# replacing the instance (a new AMI, a new EIF) keeps every round and the attested keys.
resource "aws_ebs_volume" "store" {
  availability_zone = data.aws_subnet.parent.availability_zone
  type              = "gp3"
  size              = var.store_volume_size_gib
  encrypted         = true
  kms_key_id        = local.kms_key_arn

  tags = {
    Name = "${var.name}-store"
  }

  # The store never deletes a round; neither should Terraform. Remove this line deliberately
  # (after archiving the rounds) to destroy the volume.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_volume_attachment" "store" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.store.id
  instance_id = aws_instance.parent.id
  # Stop the instance (cleanly unmounting the store) before the volume is detached on a
  # replacement, rather than pulling it from under a running parent.
  stop_instance_before_detaching = true
}
