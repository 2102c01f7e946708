// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.26;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title TestWallet
/// @notice A contract wallet with one owner key, answering EIP-1271 for signatures by that key
/// (OpenZeppelin's ECDSA recovery), and holding ether; for tests only.
contract TestWallet is IERC1271 {
    /// @notice The key whose signatures the wallet accepts.
    address public immutable owner;

    /// @param owner_ The owner key's address.
    constructor(address owner_) payable {
        owner = owner_;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError error, ) = ECDSA.tryRecover(hash, signature);
        if (error == ECDSA.RecoverError.NoError && signer == owner) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
    }

    receive() external payable {}
}
