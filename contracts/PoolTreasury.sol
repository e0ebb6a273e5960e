// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev The ERC-20 calls the treasury makes (EIP-20). Return values are checked the way tokens
/// that return nothing require: empty return data counts as success, `false` as failure.
interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);

    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title PoolTreasury: a ShareVault pool's funds, paid out only against the pool's threshold RSA key.
/// @notice Holds the pool's ERC-20 funds (and ETH as token address 0). A payout moves `amount` of
/// `token` to `to` for claim `claim` only against an RS256 JWS (RSASSA-PKCS1-v1_5 with SHA-256,
/// RFC 7515 / RFC 8017 §8.2) by the pool's current key over a compact message that binds chain id,
/// this treasury, claim, token, recipient and amount. No owner: deployment, rotation, payouts and
/// anchors are authorised by the pool key alone, so no custodian, coordinator or operator can move
/// funds without a threshold signature.
///
/// A pool key is a list of RSA moduli with e = 65537 and the length of the message encoding:
///   - Shoup threshold RSA: one modulus N; the signature part is the signature s.
///   - Product RSA (J. Lloyd, 2019): the quorum's member moduli n_i (N_Q = prod n_i) and the byte
///     length of N_Q; part i is s mod n_i. By the CRT, s^e = EM (mod N_Q) exactly when
///     (s mod n_i)^e = EM (mod n_i) for every member, so the contract checks member by member:
///     modexp cost grows with the square of the modulus length, so t checks at |n_i| are cheaper
///     than one at |N_Q| (EIP-198 / EIP-2565 / EIP-7883).
/// Only keccak256(abi.encode(emLength, moduli)) is stored; the moduli travel in calldata and are
/// published in `KeyRegistered` events.
///
/// What is signed is the JWS signing input ASCII(BASE64URL(header) || '.' || BASE64URL(message))
/// (RFC 7515 §5.1), so the authorisation is an ordinary RS256 JWS that any JOSE library verifies.
/// The contract base64url-encodes the message itself; the header is the signer's (alg, kid).
/// Because BASE64URL output never contains '.', a signature over one message can never be a
/// signature over another: the last '.' fixes where the message starts.
contract PoolTreasury {
    /// @dev The public exponent of every pool key (ShareVault's ceremonies use F4).
    bytes private constant EXPONENT = hex"010001";

    /// @dev Message tags: first bytes of the payout and rotation messages. Neither can begin a
    /// JSON text, so these messages never collide with the pool's JSON payloads (payout
    /// instructions, checkpoints) that the same key signs.
    bytes4 private constant PAYOUT_TAG = "SVP1";
    bytes4 private constant ROTATE_TAG = "SVR1";

    /// @dev A ledger checkpoint payload is RFC 8785 canonical JSON whose first member is "hash".
    bytes9 private constant CHECKPOINT_PREFIX = '{"hash":"';

    /// @dev DigestInfo of SHA-256 (RFC 8017 §9.2 note 1), right-aligned in a word after 12 bytes
    /// of 0xFF padding and the 0x00 separator.
    uint256 private constant DIGEST_INFO_WORD = 0xffffffffffffffffffffffff003031300d060960864801650304020105000420;

    struct PoolKey {
        /// Byte length of the message encoding EM: |N| for Shoup, |N_Q| for a product-RSA quorum.
        uint256 emLength;
        bytes[] moduli;
    }

    struct Signature {
        /// BASE64URL of the JWS protected header (as produced by the signer).
        bytes header;
        PoolKey key;
        /// One part per modulus: s (one modulus) or s mod n_i, each as long as its modulus.
        bytes[] parts;
    }

    // One slot: read once per payout.
    uint64 public epoch;
    uint128 public payoutCap;

    mapping(bytes32 => uint64) public keyEpoch;
    mapping(bytes32 => bool) public paid;
    mapping(bytes32 => uint256) public anchoredAt;
    uint256 public anchorCount;
    bytes32 public lastAnchor;

    event KeyRegistered(uint64 indexed epoch, bytes32 indexed keyHash, uint256 emLength, bytes[] moduli);
    event KeysRotated(uint64 indexed epoch, uint128 payoutCap);
    event Deposited(address indexed token, address indexed from, bytes32 indexed member, uint256 amount);
    event PaidOut(bytes32 indexed claim, address indexed token, address indexed to, uint256 amount, bytes32 keyHash);
    event CheckpointAnchored(uint256 indexed index, bytes32 indexed payloadHash, bytes payload);

    error InvalidKey();
    error UnknownKey(bytes32 keyHash);
    error BadSignature();
    error AlreadyPaid(bytes32 claim);
    error AboveCap(uint256 amount, uint256 cap);
    error TransferFailed();
    error NotACheckpoint();
    error AlreadyAnchored(bytes32 payloadHash);
    error BadDeposit();

    constructor(uint128 cap, PoolKey[] memory keys) {
        epoch = 1;
        payoutCap = cap;
        _register(1, keys);
        emit KeysRotated(1, cap);
    }

    // ------------------------------------------------------------------ money in

    /// @notice A premium: `amount` of `token` from the sender (after `approve`), or ETH with
    /// token 0. `member` is SHA-256 of the member's id in the pool ledger.
    function deposit(address token, uint256 amount, bytes32 member) external payable {
        if (token == address(0)) {
            if (msg.value != amount) revert BadDeposit();
        } else {
            if (msg.value != 0) revert BadDeposit();
            _call(token, abi.encodeCall(IERC20Minimal.transferFrom, (msg.sender, address(this), amount)));
        }
        emit Deposited(token, msg.sender, member, amount);
    }

    receive() external payable {
        emit Deposited(address(0), msg.sender, bytes32(0), msg.value);
    }

    // ------------------------------------------------------------------ money out

    /// @notice Pays claim `claim` (SHA-256 of the claim id) once, against the pool key's signature
    /// over `payoutMessage(claim, token, to, amount)`.
    function payout(bytes32 claim, address token, address to, uint256 amount, Signature calldata sig) external {
        uint128 cap = payoutCap;
        if (amount > cap) revert AboveCap(amount, cap);
        if (paid[claim]) revert AlreadyPaid(claim);
        bytes32 signer = _verify(payoutMessage(claim, token, to, amount), sig);
        // Effects before the interaction: a re-entrant call finds the claim paid.
        paid[claim] = true;
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert TransferFailed();
        } else {
            _call(token, abi.encodeCall(IERC20Minimal.transfer, (to, amount)));
        }
        emit PaidOut(claim, token, to, amount, signer);
    }

    /// @notice The 120-byte message a payout signature covers:
    /// "SVP1" || uint64 chainid || treasury || claim || token || to || uint128 amount.
    function payoutMessage(bytes32 claim, address token, address to, uint256 amount) public view returns (bytes memory) {
        if (amount > type(uint128).max) revert AboveCap(amount, type(uint128).max);
        return abi.encodePacked(PAYOUT_TAG, uint64(block.chainid), address(this), claim, token, to, uint128(amount));
    }

    // ------------------------------------------------------------------ key rotation

    /// @notice Replaces the key set and cap; signed by a key of the current set over
    /// `rotationMessage(newCap, keys)`. Old keys stop working at once.
    function rotate(uint128 newCap, PoolKey[] calldata keys, Signature calldata sig) external {
        _verify(rotationMessage(newCap, keys), sig);
        uint64 next = epoch + 1;
        epoch = next;
        payoutCap = newCap;
        _register(next, keys);
        emit KeysRotated(next, newCap);
    }

    /// @notice "SVR1" || uint64 chainid || treasury || uint64 next epoch || uint128 cap ||
    /// keccak256(keyHash_1 || ... || keyHash_k).
    function rotationMessage(uint128 newCap, PoolKey[] calldata keys) public view returns (bytes memory) {
        bytes32[] memory hashes = new bytes32[](keys.length);
        for (uint256 i = 0; i < keys.length; i++) {
            hashes[i] = keyHash(keys[i]);
        }
        return abi.encodePacked(ROTATE_TAG, uint64(block.chainid), address(this), epoch + 1, newCap, keccak256(abi.encodePacked(hashes)));
    }

    function keyHash(PoolKey calldata key) public pure returns (bytes32) {
        return keccak256(abi.encode(key.emLength, key.moduli));
    }

    // ------------------------------------------------------------------ checkpoints

    /// @notice Anchors a threshold-signed ledger checkpoint: the same JWS the ledger holds
    /// (payload = the checkpoint's canonical JSON). Stores SHA-256 of the payload.
    function anchor(bytes calldata payload, Signature calldata sig) external {
        if (payload.length < CHECKPOINT_PREFIX.length || bytes9(payload[:9]) != CHECKPOINT_PREFIX) revert NotACheckpoint();
        bytes32 hash = sha256(payload);
        if (anchoredAt[hash] != 0) revert AlreadyAnchored(hash);
        _verify(payload, sig);
        anchoredAt[hash] = block.number;
        lastAnchor = hash;
        emit CheckpointAnchored(anchorCount++, hash, payload);
    }

    // ------------------------------------------------------------------ verification

    function _register(uint64 at, PoolKey[] memory keys) private {
        if (keys.length == 0) revert InvalidKey();
        for (uint256 i = 0; i < keys.length; i++) {
            PoolKey memory key = keys[i];
            uint256 count = key.moduli.length;
            // 128 bytes leaves EM at least 8 bytes of 0xFF padding (RFC 8017 §9.2 step 5).
            if (count == 0 || key.emLength < 128 || (count == 1 && key.moduli[0].length != key.emLength)) revert InvalidKey();
            for (uint256 j = 0; j < count; j++) {
                bytes memory n = key.moduli[j];
                if (n.length < 64 || n.length > key.emLength || n[0] == 0 || uint8(n[n.length - 1]) & 1 == 0) revert InvalidKey();
            }
            bytes32 h = keccak256(abi.encode(key.emLength, key.moduli));
            keyEpoch[h] = at;
            emit KeyRegistered(at, h, key.emLength, key.moduli);
        }
    }

    /// @dev Reverts unless `sig` is a current key's RS256 JWS over `message`; returns the key hash.
    /// Reverting (rather than returning false) also keeps eth_estimateGas honest when modexp runs
    /// out of gas.
    function _verify(bytes memory message, Signature calldata sig) private view returns (bytes32 hash) {
        uint256 count = sig.key.moduli.length;
        if (count == 0 || count != sig.parts.length) revert BadSignature();
        hash = keyHash(sig.key);
        if (keyEpoch[hash] != epoch) revert UnknownKey(hash);
        bytes32 digest = sha256(abi.encodePacked(sig.header, ".", _base64Url(message)));
        bytes memory em = _encodePkcs1(digest, sig.key.emLength);
        for (uint256 i = 0; i < count; i++) {
            bytes calldata n = sig.key.moduli[i];
            bytes calldata s = sig.parts[i];
            // RFC 8017 §5.2.2 step 1: the signature representative must be below the modulus.
            if (s.length != n.length || !_below(s, n)) revert BadSignature();
            bytes memory expected = count == 1 ? em : _modexp(em, hex"01", n);
            if (keccak256(_modexp(s, EXPONENT, n)) != keccak256(expected)) revert BadSignature();
        }
    }

    /// @dev EMSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §9.2): 0x00 0x01 FF..FF 0x00 DigestInfo H.
    function _encodePkcs1(bytes32 digest, uint256 k) private pure returns (bytes memory em) {
        em = new bytes(k);
        assembly ("memory-safe") {
            let p := add(em, 32)
            for { let i := 0 } lt(i, k) { i := add(i, 32) } { mstore(add(p, i), not(0)) }
            mstore8(p, 0)
            mstore8(add(p, 1), 1)
            mstore(add(p, sub(k, 64)), DIGEST_INFO_WORD)
            mstore(add(p, sub(k, 32)), digest)
        }
    }

    /// @dev base^exp mod m through the EIP-198 precompile at address 0x05.
    function _modexp(bytes memory base, bytes memory exp, bytes calldata m) private view returns (bytes memory) {
        (bool ok, bytes memory out) = address(5).staticcall(abi.encodePacked(base.length, exp.length, m.length, base, exp, m));
        if (!ok || out.length != m.length) revert BadSignature();
        return out;
    }

    /// @dev a < b for equal-length big-endian byte strings in calldata.
    function _below(bytes calldata a, bytes calldata b) private pure returns (bool) {
        uint256 len = a.length;
        for (uint256 i = 0; i < len; i += 32) {
            uint256 x;
            uint256 y;
            assembly {
                x := calldataload(add(a.offset, i))
                y := calldataload(add(b.offset, i))
            }
            if (i + 32 > len) {
                uint256 drop = 8 * (i + 32 - len);
                x >>= drop;
                y >>= drop;
            }
            if (x != y) return x < y;
        }
        return false;
    }

    /// @dev RFC 4648 §5 base64url without padding (RFC 7515 §2).
    function _base64Url(bytes memory data) private pure returns (bytes memory out) {
        bytes memory table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint256 len = data.length;
        uint256 full = len / 3;
        uint256 rest = len - full * 3;
        out = new bytes(full * 4 + (rest == 0 ? 0 : rest + 1));
        assembly ("memory-safe") {
            let t := add(table, 1)
            let src := data
            let end := add(data, mul(full, 3))
            let dst := add(out, 32)
            for {} lt(src, end) {} {
                src := add(src, 3)
                let w := mload(src)
                mstore8(dst, mload(add(t, and(shr(18, w), 0x3F))))
                mstore8(add(dst, 1), mload(add(t, and(shr(12, w), 0x3F))))
                mstore8(add(dst, 2), mload(add(t, and(shr(6, w), 0x3F))))
                mstore8(add(dst, 3), mload(add(t, and(w, 0x3F))))
                dst := add(dst, 4)
            }
            // The tail group reads only the bytes that exist (memory after `data` may be dirty).
            if rest {
                let w := shl(16, byte(0, mload(add(add(data, 32), mul(full, 3)))))
                if eq(rest, 2) { w := or(w, shl(8, byte(0, mload(add(add(data, 33), mul(full, 3)))))) }
                mstore8(dst, mload(add(t, and(shr(18, w), 0x3F))))
                mstore8(add(dst, 1), mload(add(t, and(shr(12, w), 0x3F))))
                if eq(rest, 2) { mstore8(add(dst, 2), mload(add(t, and(shr(6, w), 0x3F)))) }
            }
        }
    }

    function _call(address token, bytes memory data) private {
        (bool ok, bytes memory ret) = token.call(data);
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool))) || (ret.length == 0 && token.code.length == 0)) revert TransferFailed();
    }
}
