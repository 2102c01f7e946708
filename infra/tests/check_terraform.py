#!/usr/bin/env python3
"""Checks the security properties of the Terraform in infra/terraform by parsing it.

`terraform validate` and `plan` need the provider (a download) and an AWS account; this check
needs neither. It parses every .tf file with python-hcl2 and asserts what the deployment
promises (BRIEF.md section 4, infra/README.md):

  - every instance has Nitro Enclaves enabled, IMDSv2 only (tokens required, hop limit 1) and no
    public IP;
  - every root and EBS volume is encrypted;
  - no security group rule, inline or separate, opens ingress or egress to 0.0.0.0/0 or ::/0, no
    egress rule allows every protocol, and every CIDR that comes from a variable is validated
    against /0;
  - no such CIDR appears anywhere else (defaults, locals) either;
  - every IAM policy is an aws_iam_policy_document whose Allow statements name no wildcard action,
    no "*" resource, no "*" principal, and use no NotAction/NotResource; no managed policy is
    attached;
  - user_data installs nothing from the internet.

Each check prints what it verified; a failure names the resource and the script exits 1.
`--self-test` copies the files to a temporary directory, applies mutations that each break one
property (http_tokens = "optional", encrypted = false, an egress to 0.0.0.0/0, Action "*", ...),
and asserts that every mutation is caught.

Tested with python-hcl2 8.1.4 (pip install python-hcl2==8.1.4).
"""

import argparse
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

try:
    import hcl2
except ImportError:
    sys.exit("python-hcl2 is not installed: pip install python-hcl2==8.1.4")

TESTED_VERSION = "8.1.4"
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "terraform"
# Attributes holding prose, or the validations that reject the open CIDRs by naming them.
PROSE_KEYS = {"description", "error_message", "condition"}
# Resources with a policy argument that must come from an aws_iam_policy_document.
POLICY_ARGUMENTS = {
    "aws_iam_role": ["assume_role_policy"],
    "aws_iam_role_policy": ["policy"],
    "aws_iam_policy": ["policy"],
    "aws_iam_user_policy": ["policy"],
    "aws_iam_group_policy": ["policy"],
    "aws_vpc_endpoint": ["policy"],
    "aws_vpc_endpoint_policy": ["policy"],
    "aws_s3_bucket_policy": ["policy"],
    "aws_kms_key": ["policy"],
}
POLICY_DOCUMENT_REF = re.compile(r"^\$\{data\.aws_iam_policy_document\.[A-Za-z0-9_-]+\.json\}$")
INTERNET_INSTALL = re.compile(r"\b(curl|wget|yum|dnf|apt-get|apt|pip3?|amazon-linux-extras|snap|git)\b")


def unquote(value):
    """python-hcl2 8 keeps the quotes of strings and block labels and marks blocks with
    __is_block__; drop both so that values compare as written."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def blocks(body, name):
    """The nested blocks `name` of a body (python-hcl2 gives a list of dicts)."""
    found = body.get(name, [])
    return found if isinstance(found, list) else [found]


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Config:
    """The parsed .tf files of one directory."""

    def __init__(self, directory):
        self.directory = directory
        self.resources = []  # (type, name, body)
        self.data = []
        self.variables = {}
        self.locals = {}
        self.trees = {}
        for path in sorted(directory.rglob("*.tf")):
            if ".terraform" in path.parts:
                continue
            with open(path) as f:
                tree = unquote(hcl2.load(f))
            self.trees[path.name] = tree
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in tree.get(kind, []):
                    for rtype, named in block.items():
                        for name, body in named.items():
                            target.append((rtype, name, body))
            for block in tree.get("variable", []):
                for name, body in block.items():
                    self.variables[name] = body
            for block in tree.get("locals", []):
                self.locals.update(block)

    def resolve(self, value):
        """A value that is exactly `${local.NAME}` is checked as that local's expression."""
        for _ in range(10):
            match = re.fullmatch(r"\$\{local\.([A-Za-z0-9_-]+)\}", str(value))
            if not match or match.group(1) not in self.locals:
                return value
            value = self.locals[match.group(1)]
        return value

    def of_type(self, *types):
        return [(t, n, b) for t, n, b in self.resources if t in types]


class Report:
    def __init__(self, quiet=False):
        self.passed = 0
        self.failures = []
        self.quiet = quiet

    def ok(self, what):
        self.passed += 1
        if not self.quiet:
            print(f"ok    {what}")

    def fail(self, where, what):
        self.failures.append(f"{where}: {what}")
        if not self.quiet:
            print(f"FAIL  {where}: {what}")

    def check(self, condition, where, what):
        if condition:
            self.ok(f"{where}: {what}")
        else:
            self.fail(where, f"expected {what}")


def check_instances(config, report):
    instances = config.of_type("aws_instance")
    report.check(instances, "terraform", "at least one aws_instance")
    for _, name, body in instances:
        where = f"aws_instance.{name}"
        enclave = blocks(body, "enclave_options")
        report.check(any(b.get("enabled") is True for b in enclave), where, "enclave_options { enabled = true }")
        meta = blocks(body, "metadata_options")
        meta = meta[0] if meta else {}
        report.check(meta.get("http_tokens") == "required", where, 'metadata_options.http_tokens = "required" (IMDSv2 only)')
        report.check(meta.get("http_endpoint") == "enabled", where, 'metadata_options.http_endpoint = "enabled"')
        report.check(meta.get("http_put_response_hop_limit") == 1, where, "metadata_options.http_put_response_hop_limit = 1")
        report.check(body.get("associate_public_ip_address") is False, where, "associate_public_ip_address = false")
        roots = blocks(body, "root_block_device")
        report.check(roots and all(b.get("encrypted") is True for b in roots), where, "root_block_device { encrypted = true }")
        for i, ebs in enumerate(blocks(body, "ebs_block_device")):
            report.check(ebs.get("encrypted") is True, where, f"ebs_block_device[{i}] encrypted = true")
    for _, name, body in config.of_type("aws_launch_template"):
        where = f"aws_launch_template.{name}"
        report.check(any(b.get("enabled") is True for b in blocks(body, "enclave_options")), where, "enclave_options enabled")
        meta = (blocks(body, "metadata_options") or [{}])[0]
        report.check(meta.get("http_tokens") == "required", where, 'metadata_options.http_tokens = "required"')
        for mapping in blocks(body, "block_device_mappings"):
            for ebs in blocks(mapping, "ebs"):
                report.check(str(ebs.get("encrypted")).lower() == "true", where, "block_device_mappings ebs encrypted")
    for _, name, body in config.of_type("aws_ebs_volume"):
        report.check(body.get("encrypted") is True, f"aws_ebs_volume.{name}", "encrypted = true")


def variables_in(value):
    return set(re.findall(r"\bvar\.([A-Za-z0-9_-]+)", str(value)))


def check_cidr_source(config, report, where, direction, values, for_each):
    """A rule's CIDRs: no open literal, and a variable they come from must reject /0."""
    for value in [config.resolve(v) for v in as_list(values)]:
        if any(c in str(value) for c in OPEN_CIDRS):
            report.fail(where, f"{direction} open to {value}")
            continue
        report.ok(f"{where}: {direction} CIDR {value} is not 0.0.0.0/0 or ::/0")
        names = variables_in(value)
        if "each." in str(value):
            names |= variables_in(for_each)
        for var in sorted(names):
            body = config.variables.get(var)
            if body is None:
                report.fail(where, f"{direction} CIDRs come from undeclared variable {var}")
                continue
            guarded = any("/0" in str(v.get("condition", "")) for v in blocks(body, "validation"))
            report.check(guarded, where, f"variable {var} (its {direction} CIDRs) has a validation rejecting /0")


def check_security_groups(config, report):
    for _, name, body in config.of_type("aws_security_group"):
        where = f"aws_security_group.{name}"
        for direction in ("ingress", "egress"):
            for rule in blocks(body, direction):
                check_cidr_source(config, report, where, direction, as_list(rule.get("cidr_blocks")) + as_list(rule.get("ipv6_cidr_blocks")), None)
                if direction == "egress":
                    report.check(str(rule.get("protocol")) not in ("-1", "all"), where, "inline egress limited to one protocol")
        report.ok(f"{where}: inline rules checked ({len(blocks(body, 'ingress'))} ingress, {len(blocks(body, 'egress'))} egress)")
    for _, name, body in config.of_type("aws_security_group_rule"):
        where = f"aws_security_group_rule.{name}"
        direction = body.get("type", "?")
        check_cidr_source(config, report, where, direction, as_list(body.get("cidr_blocks")) + as_list(body.get("ipv6_cidr_blocks")), body.get("for_each"))
        if direction == "egress":
            report.check(str(body.get("protocol")) not in ("-1", "all"), where, "egress limited to one protocol")
    for rtype, direction in (("aws_vpc_security_group_ingress_rule", "ingress"), ("aws_vpc_security_group_egress_rule", "egress")):
        for _, name, body in config.of_type(rtype):
            where = f"{rtype}.{name}"
            check_cidr_source(config, report, where, direction, as_list(body.get("cidr_ipv4")) + as_list(body.get("cidr_ipv6")), body.get("for_each"))
            if direction == "egress":
                report.check(str(body.get("ip_protocol")) not in ("-1", "all"), where, "egress limited to one protocol")


def walk_strings(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in PROSE_KEYS:
                yield from walk_strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v, path)
    elif isinstance(value, str):
        yield path, value


def check_no_open_cidr_anywhere(config, report):
    for file, tree in sorted(config.trees.items()):
        hits = [(p, s) for p, s in walk_strings(tree) if any(c in s for c in OPEN_CIDRS)]
        for path, s in hits:
            report.fail(path.replace('"', ""), f"contains an open CIDR ({s}) in {file}")
        if not hits:
            report.ok(f"{file}: no 0.0.0.0/0 or ::/0 outside descriptions and validations")


def statements(document):
    found = list(blocks(document, "statement"))
    for dynamic in blocks(document, "dynamic"):
        for label, body in dynamic.items():
            if label == "statement":
                found.extend(blocks(body, "content"))
    return found


def check_iam(config, report):
    for rtype, name, body in config.data:
        if rtype != "aws_iam_policy_document":
            continue
        where = f"data.aws_iam_policy_document.{name}"
        for i, st in enumerate(statements(body)):
            sid = st.get("sid", i)
            if st.get("effect", "Allow") == "Deny":
                report.ok(f"{where}[{sid}]: Deny statement")
                continue
            actions = [config.resolve(a) for a in as_list(st.get("actions"))]
            report.check(actions and not any("*" in str(a) for a in actions), where, f"statement {sid}: explicit actions without wildcards ({', '.join(map(str, actions))})")
            resources = [config.resolve(r) for r in as_list(st.get("resources"))]
            # A trust policy (sts:AssumeRole for named principals) has no resources.
            trust = actions and all(str(a).startswith("sts:AssumeRole") for a in actions) and blocks(st, "principals")
            if not trust or resources:
                report.check(
                    resources and not any(r == "*" or r.endswith(":*") for r in map(str, resources)),
                    where,
                    f"statement {sid}: resources are not \"*\" ({', '.join(map(str, resources))})",
                )
            report.check("not_actions" not in st and "not_resources" not in st, where, f"statement {sid}: no not_actions/not_resources")
            for principal in blocks(st, "principals"):
                ids = as_list(principal.get("identifiers"))
                report.check("*" not in ids, where, f"statement {sid}: principals are named, not \"*\"")
    for rtype, arguments in POLICY_ARGUMENTS.items():
        for _, name, body in config.of_type(rtype):
            for argument in arguments:
                if argument in body:
                    report.check(
                        POLICY_DOCUMENT_REF.match(str(body[argument])) is not None,
                        f"{rtype}.{name}",
                        f"{argument} comes from an aws_iam_policy_document (so this check can read it)",
                    )
            if rtype == "aws_iam_role":
                report.check("managed_policy_arns" not in body and not blocks(body, "inline_policy"), f"{rtype}.{name}", "no managed_policy_arns or inline_policy")
    attachments = config.of_type("aws_iam_role_policy_attachment", "aws_iam_policy_attachment", "aws_iam_role_policy_attachments_exclusive")
    for rtype, name, _ in attachments:
        report.fail(f"{rtype}.{name}", "attaches a policy this check cannot inspect (managed policies use wildcards)")
    if not attachments:
        report.ok("terraform: no managed policy attachments")


def check_user_data(config, report):
    for path in sorted(config.directory.rglob("*.tftpl")):
        lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
        hits = [line.strip() for line in lines if INTERNET_INSTALL.search(line)]
        report.check(not hits, path.name, f"user_data installs nothing from the internet{': ' + '; '.join(hits) if hits else ''}")


def run_checks(directory, quiet=False):
    report = Report(quiet)
    config = Config(directory)
    check_instances(config, report)
    check_security_groups(config, report)
    check_no_open_cidr_anywhere(config, report)
    check_iam(config, report)
    check_user_data(config, report)
    return report


# Each mutation breaks one property; `expect` must appear in one of the failures it causes.
# (file, regex to replace once or None to append, replacement, expect)
MUTANT_EGRESS = '''
resource "aws_vpc_security_group_egress_rule" "mutant" {
  security_group_id = aws_security_group.parent.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}
'''
MUTANT_RULE_V6 = '''
resource "aws_security_group_rule" "mutant" {
  type              = "egress"
  security_group_id = aws_security_group.parent.id
  ipv6_cidr_blocks  = ["::/0"]
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
}
'''
MUTANT_INGRESS = '''
resource "aws_vpc_security_group_ingress_rule" "mutant" {
  security_group_id = aws_security_group.parent.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 8080
  to_port           = 8080
}
'''
MUTANT_ATTACHMENT = '''
resource "aws_iam_role_policy_attachment" "mutant" {
  role       = aws_iam_role.parent.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
}
'''
MUTATIONS = [
    ("http_tokens optional", "main.tf", r'http_tokens(\s*)= "required"', r'http_tokens\1= "optional"', "aws_instance.parent"),
    ("hop limit 2", "main.tf", r"http_put_response_hop_limit = 1", "http_put_response_hop_limit = 2", "aws_instance.parent"),
    ("enclave disabled", "main.tf", r"(enclave_options \{\s*enabled\s*=\s*)true", r"\1false", "aws_instance.parent"),
    ("public IP", "main.tf", r"associate_public_ip_address = false", "associate_public_ip_address = true", "aws_instance.parent"),
    ("root volume unencrypted", "main.tf", r"(root_block_device \{[^}]*?encrypted\s*=\s*)true", r"\1false", "aws_instance.parent"),
    ("data volume unencrypted", "main.tf", r'(resource "aws_ebs_volume" "store" \{[^}]*?encrypted\s*=\s*)true', r"\1false", "aws_ebs_volume.store"),
    ("egress rule to 0.0.0.0/0", "main.tf", None, MUTANT_EGRESS, "aws_vpc_security_group_egress_rule.mutant"),
    ("egress rule to ::/0", "main.tf", None, MUTANT_RULE_V6, "aws_security_group_rule.mutant"),
    ("ingress rule from 0.0.0.0/0", "main.tf", None, MUTANT_INGRESS, "aws_vpc_security_group_ingress_rule.mutant"),
    (
        "inline egress block to 0.0.0.0/0",
        "main.tf",
        r'(resource "aws_security_group" "parent" \{\n)',
        r'\1  egress {\n    from_port   = 0\n    to_port     = 0\n    protocol    = "-1"\n    cidr_blocks = ["0.0.0.0/0"]\n  }\n',
        "aws_security_group.parent",
    ),
    ("egress on every protocol", "main.tf", r'(description\s*=\s*"S3 \(publication\)[^\n]*\n[^\n]*\n\s*ip_protocol\s*=\s*)"tcp"', r'\1"-1"', "aws_vpc_security_group_egress_rule.s3"),
    ("SSH open by default", "variables.tf", r'(variable "admin_ssh_cidrs" \{[^}]*?default\s*=\s*)\[\]', r'\1["0.0.0.0/0"]', "admin_ssh_cidrs"),
    ("database CIDRs unguarded", "variables.tf", r'(variable "database_cidrs" \{.*?) && !endswith\(c, "/0"\)', r"\1", "aws_vpc_security_group_egress_rule.database"),
    ("Action *", "main.tf", r'(sid\s*=\s*"PublishRounds"\s*effect\s*=\s*"Allow"\s*actions\s*=\s*)\[[^\]]*\]', r'\1["*"]', "data.aws_iam_policy_document.publish"),
    ("Action s3:*", "main.tf", r'(sid\s*=\s*"PublishRounds"\s*effect\s*=\s*"Allow"\s*actions\s*=\s*)\[[^\]]*\]', r'\1["s3:*"]', "data.aws_iam_policy_document.publish"),
    ("Resource *", "main.tf", r'(sid\s*=\s*"PublishRounds"(?:\s*\w+\s*=\s*[^\n]*\n)*?\s*resources\s*=\s*)\[[^\]]*\]', r'\1["*"]', "data.aws_iam_policy_document.publish"),
    ("publication ARN widened to *", "main.tf", r"(publication_objects_arn\s*=\s*)\"[^\n]*", r'\1"*"', "data.aws_iam_policy_document.publish"),
    ("policy not from a document", "main.tf", r"(policy\s*=\s*)data\.aws_iam_policy_document\.publish\.json", r'\1jsonencode({ Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })', "aws_iam_role_policy.publish"),
    ("managed policy attached", "main.tf", None, MUTANT_ATTACHMENT, "aws_iam_role_policy_attachment.mutant"),
    ("user_data downloads", "user_data.sh.tftpl", None, "\ndnf install -y amazon-cloudwatch-agent\n", "user_data.sh.tftpl"),
]


def self_test(directory):
    caught = 0
    problems = []
    for title, file, pattern, replacement, expect in MUTATIONS:
        with tempfile.TemporaryDirectory(prefix="check-terraform-") as tmp:
            copy = Path(tmp) / "terraform"
            shutil.copytree(directory, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
            target = copy / file
            text = target.read_text()
            if pattern is None:
                mutated = text + replacement
            else:
                mutated, count = re.subn(pattern, replacement, text, count=1, flags=re.DOTALL)
                if count != 1:
                    problems.append(f"mutation '{title}' no longer applies to {file}: update the self-test")
                    print(f"FAIL  self-test: mutation '{title}' no longer applies to {file}")
                    continue
            target.write_text(mutated)
            try:
                report = run_checks(copy, quiet=True)
            except Exception as e:  # a mutation must leave valid HCL, or it tests nothing
                problems.append(f"mutation '{title}' broke parsing: {e}")
                print(f"FAIL  self-test: '{title}' left {file} unparseable: {e}")
                continue
            hits = [f for f in report.failures if expect in f]
            if hits:
                caught += 1
                print(f"ok    self-test: '{title}' caught: {hits[0]}")
            else:
                problems.append(f"mutation '{title}' was not caught (expected a failure naming {expect})")
                print(f"FAIL  self-test: '{title}' not caught (failures: {report.failures or 'none'})")
    return caught, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR, help="the Terraform directory (default: infra/terraform)")
    parser.add_argument("--self-test", action="store_true", help="check that mutated copies of the files are refused")
    args = parser.parse_args()
    version = metadata.version("python-hcl2")
    if version != TESTED_VERSION:
        print(f"note: python-hcl2 {version}; these checks were tested with {TESTED_VERSION}")
    if not any(args.directory.glob("*.tf")):
        sys.exit(f"no .tf files in {args.directory}")
    if args.self_test:
        caught, problems = self_test(args.directory)
        print(f"terraform self-test: {caught} passed, {len(problems)} failed")
        sys.exit(1 if problems else 0)
    report = run_checks(args.directory)
    print(f"terraform checks: {report.passed} passed, {len(report.failures)} failed")
    if report.failures:
        print("failing:", *report.failures, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
