#!/usr/bin/env bash
# Re-creates build/ (creation bytecode and ABI of the test contracts) from pinned npm packages
# with solcjs, the Solidity compiler's npm build, optimiser on (200 runs). Needs node and npm, and
# reaches only the npm registry. `build.sh --check` builds into a temporary directory and fails if
# the result differs from the committed build/.
set -euo pipefail

CHAINLINK=1.5.0         # MockV3Aggregator (src/v0.8/shared/mocks)
CHAINLINK_PROXY=0.8.0   # EACAggregatorProxy (src/v0.6): the last release that still ships it
OPENZEPPELIN=5.4.0      # ERC20
SOLC_08=0.8.26
SOLC_06=0.6.6

here=$(cd "$(dirname "$0")" && pwd)
out="$here/build"
check=false
if [ "${1:-}" = --check ]; then check=true; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The contract packages: only their tarballs, no dependencies, nothing installed into the repo.
fetch() { # package version directory
  mkdir -p "$3"
  (cd "$3" && npm pack --silent "$1@$2" >/dev/null && tar xzf ./*.tgz --strip-components=1 && rm ./*.tgz)
}
fetch @chainlink/contracts "$CHAINLINK" 08/node_modules/@chainlink/contracts
fetch @openzeppelin/contracts "$OPENZEPPELIN" 08/node_modules/@openzeppelin/contracts
fetch @chainlink/contracts "$CHAINLINK_PROXY" 06

# The compilers.
npm install --silent --no-fund --no-audit --no-save --prefix solc-08 "solc@$SOLC_08" >/dev/null
npm install --silent --no-fund --no-audit --no-save --prefix solc-06 "solc@$SOLC_06" >/dev/null

# 0.8: our TestToken and TestWallet, and Chainlink's MockV3Aggregator (imported by src/ChainlinkMocks.sol).
mkdir 08/src 08/out
cp "$here/src/TestToken.sol" "$here/src/TestWallet.sol" "$here/src/ChainlinkMocks.sol" 08/src/
(cd 08 && ../solc-08/node_modules/.bin/solcjs --optimize --optimize-runs 200 --bin --abi \
  --base-path . --include-path node_modules -o out src/TestToken.sol src/TestWallet.sol src/ChainlinkMocks.sol >/dev/null)

# 0.6.6: Chainlink's EACAggregatorProxy, the proxy mainnet feeds sit behind. This solcjs has no
# import callback, so every file the proxy imports is named. (It prints two warnings about a shadowed
# `phaseId` in Chainlink's code on stdout; errors go to stderr and fail the build.)
mkdir 06/out
(cd 06/src/v0.6 && ../../../solc-06/node_modules/.bin/solcjs --optimize --bin --abi -o ../../out \
  EACAggregatorProxy.sol AggregatorProxy.sol Owned.sol interfaces/AggregatorV2V3Interface.sol \
  interfaces/AccessControllerInterface.sol interfaces/AggregatorInterface.sol \
  interfaces/AggregatorV3Interface.sol >/dev/null)

mkdir result
take() { # from name
  cp "$1.bin" "result/$2.bin"
  cp "$1.abi" "result/$2.abi.json"
}
take 08/out/src_TestToken_sol_TestToken TestToken
take 08/out/src_TestWallet_sol_TestWallet TestWallet
take 08/out/@chainlink_contracts_src_v0_8_shared_mocks_MockV3Aggregator_sol_MockV3Aggregator MockV3Aggregator
take 06/out/EACAggregatorProxy_sol_EACAggregatorProxy EACAggregatorProxy
for f in result/*.bin; do
  [ -s "$f" ] || { echo "empty bytecode: $f" >&2; exit 1; }
done

if $check; then
  diff -r "$out" result && echo "build/ matches the sources"
else
  rm -rf "$out"
  cp -r result "$out"
  echo "wrote $out"
fi
