// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.26;

// Chainlink's mock aggregator, compiled unchanged from the @chainlink/contracts package: importing
// it here is all this file does, so that one compiler run builds it beside TestToken.
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";
