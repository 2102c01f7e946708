output "instance_id" {
  description = "The parent instance (register it with the TLS terminator's target group on http_port)."
  value       = aws_instance.parent.id
}

output "private_ip" {
  description = "The parent's private IPv4 address."
  value       = aws_instance.parent.private_ip
}

output "http_api_target" {
  description = "Where the TLS terminator forwards to (plain HTTP, private)."
  value       = "${aws_instance.parent.private_ip}:${var.http_port}"
}

output "security_group_id" {
  description = "The parent's security group. Allow it in the database's own security group on database_port."
  value       = aws_security_group.parent.id
}

output "role_arn" {
  description = "The parent's IAM role: name it in the publication bucket's policy if that policy restricts writers."
  value       = aws_iam_role.parent.arn
}

output "store_volume_id" {
  description = "The encrypted data volume holding the bundle store and keys (kept if the instance is replaced)."
  value       = aws_ebs_volume.store.id
}

output "volume_kms_key_arn" {
  description = "The KMS key encrypting the root and data volumes."
  value       = local.kms_key_arn
}

output "s3_prefix_list_id" {
  description = "The S3 prefix list the egress rule allows (through the gateway endpoint)."
  value       = local.s3_prefix_list_id
}

output "publication_location" {
  description = "Where rounds are published."
  value       = "s3://${var.publication_bucket}/${var.publication_prefix}/rounds/"
}
