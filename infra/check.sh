#!/usr/bin/env bash
# Offline checks of the deployment files, run from the repository root (CI calls it):
#   - `bash -n` of every shell script under infra/ and scripts/ (the user_data template too);
#   - no unit starts the enclave in debug mode, and `systemd-analyze verify` of the units;
#   - `terraform fmt -check` if terraform is installed (skipped, and said so, if not);
#   - infra/tests/check_terraform.py: the security properties of the Terraform, then its
#     self-test on mutated copies. It needs python-hcl2 (pip install python-hcl2==8.1.4).
# Every check runs even after a failure; the last line counts them, and the exit code is 1 if
# any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok    $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; }

while IFS= read -r -d '' script; do
  if bash -n "$script"; then pass "bash -n $script"; else fail "bash -n $script"; fi
done < <(find infra scripts -type f \( -name '*.sh' -o -name '*.sh.tftpl' \) -print0 | sort -z)

# A debug-mode enclave reports all-zero PCRs and exposes its console: never in a unit.
if grep -n -e '--debug-mode' infra/systemd/*.service | grep -v '^[^:]*:[0-9]*:#'; then
  fail "a unit in infra/systemd starts the enclave with --debug-mode"
else
  pass "no unit in infra/systemd uses --debug-mode"
fi

# The units' syntax, where systemd is installed. The programs they start and the allocator unit
# exist only on the instance: a stand-in allocator unit is given, and missing programs are not
# counted against the units.
if command -v systemd-analyze >/dev/null; then
  units=$(mktemp -d)
  cp infra/systemd/*.service infra/systemd/*.timer "$units/"
  printf '[Unit]\nDescription=stand-in\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
    >"$units/nitro-enclaves-allocator.service"
  problems=$(cd "$units" && SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify solvency-*.service \
    solvency-publish.timer solvency-enclave-watch.timer 2>&1 | grep -v 'is not executable' || true)
  rm -rf "$units"
  if [[ -z $problems ]]; then pass "systemd-analyze verify infra/systemd"; else fail "systemd-analyze verify: $problems"; fi
else
  echo "skip  systemd-analyze verify: systemd is not installed"
fi

if command -v terraform >/dev/null; then
  if terraform fmt -check -recursive infra/terraform; then
    pass "terraform fmt -check -recursive infra/terraform"
  else
    fail "terraform fmt -check -recursive infra/terraform (run terraform fmt -recursive infra/terraform)"
  fi
else
  echo "skip  terraform fmt -check: terraform is not installed"
fi

if python3 infra/tests/check_terraform.py; then
  pass "infra/tests/check_terraform.py"
else
  fail "infra/tests/check_terraform.py"
fi
if python3 infra/tests/check_terraform.py --self-test; then
  pass "infra/tests/check_terraform.py --self-test"
else
  fail "infra/tests/check_terraform.py --self-test"
fi

echo "infra checks: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
