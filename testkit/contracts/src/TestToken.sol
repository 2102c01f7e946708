// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.26;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice An ERC-20 with the decimals a test chooses, whose whole supply is minted to one holder
/// at deployment. OpenZeppelin's ERC-20, unchanged but for `decimals`; for tests only.
contract TestToken is ERC20 {
    uint8 private immutable _decimals;

    /// @param decimals_ What `decimals()` reports.
    /// @param holder Who receives the supply.
    /// @param amount The supply, in the token's smallest unit.
    constructor(uint8 decimals_, address holder, uint256 amount) ERC20("Solvency Test Token", "SOLVT") {
        _decimals = decimals_;
        _mint(holder, amount);
    }

    /// @notice The number of decimals the token's amounts are scaled by.
    function decimals() public view override returns (uint8) {
        return _decimals;
    }
}
