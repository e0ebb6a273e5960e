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
/// Only the key's hash (`keyHash`) is stored; the moduli travel in calldata and are published in
/// `KeyRegistered` events. The public exponent is 65537 (F4) for every key, as ShareVault's
/// ceremonies make them.
///
/// What is signed is the JWS signing input ASCII(BASE64URL(header) || '.' || BASE64URL(message))
/// (RFC 7515 §5.1), so the authorisation is an ordinary RS256 JWS that any JOSE library verifies.
/// The contract base64url-encodes the message itself; the header is the signer's (alg, kid).
/// Because BASE64URL output never contains '.', a signature over one message can never be a
/// signature over another: the last '.' fixes where the message starts.
contract PoolTreasury {
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

    uint64 public epoch;
    uint128 public payoutCap;

    /// @dev Per current key: (payoutCap << 64) | epoch, zero for any other key. A payout reads
    /// this one slot for both the key check and the cap (EIP-2929: each cold slot costs 2,100 gas).
    mapping(bytes32 => uint256) public keyState;
    bytes32[] private _currentKeys;
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
        _register(1, cap, keys);
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
        if (paid[claim]) revert AlreadyPaid(claim);
        (bytes32 signer, uint256 state) = _currentKey(sig);
        uint256 cap = state >> 64;
        if (amount > cap) revert AboveCap(amount, cap);
        _verify(payoutMessage(claim, token, to, amount), sig);
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
        _currentKey(sig);
        _verify(rotationMessage(newCap, keys), sig);
        for (uint256 i = 0; i < _currentKeys.length; i++) {
            delete keyState[_currentKeys[i]];
        }
        delete _currentKeys;
        _register(epoch + 1, newCap, keys);
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

    /// @notice keccak256(emLength || keccak256(n_1) || ... || keccak256(n_t)), emLength as uint256.
    function keyHash(PoolKey calldata key) public pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](key.moduli.length);
        for (uint256 i = 0; i < hashes.length; i++) {
            hashes[i] = keccak256(key.moduli[i]);
        }
        return keccak256(abi.encodePacked(key.emLength, hashes));
    }

    /// @notice Whether `hash` names a key of the current set.
    function isCurrentKey(bytes32 hash) external view returns (bool) {
        return keyState[hash] != 0;
    }

    // ------------------------------------------------------------------ checkpoints

    /// @notice Anchors a threshold-signed ledger checkpoint: the same JWS the ledger holds
    /// (payload = the checkpoint's canonical JSON). Stores SHA-256 of the payload.
    function anchor(bytes calldata payload, Signature calldata sig) external {
        if (payload.length < CHECKPOINT_PREFIX.length || bytes9(payload[:9]) != CHECKPOINT_PREFIX) revert NotACheckpoint();
        bytes32 hash = sha256(payload);
        if (anchoredAt[hash] != 0) revert AlreadyAnchored(hash);
        _currentKey(sig);
        _verify(payload, sig);
        anchoredAt[hash] = block.number;
        lastAnchor = hash;
        emit CheckpointAnchored(anchorCount++, hash, payload);
    }

    // ------------------------------------------------------------------ verification

    function _register(uint64 at, uint128 cap, PoolKey[] memory keys) private {
        if (keys.length == 0) revert InvalidKey();
        epoch = at;
        payoutCap = cap;
        for (uint256 i = 0; i < keys.length; i++) {
            PoolKey memory key = keys[i];
            uint256 count = key.moduli.length;
            // 128 bytes leaves EM at least 8 bytes of 0xFF padding (RFC 8017 §9.2 step 5).
            if (count == 0 || key.emLength < 128 || (count == 1 && key.moduli[0].length != key.emLength)) revert InvalidKey();
            bytes32[] memory hashes = new bytes32[](count);
            for (uint256 j = 0; j < count; j++) {
                bytes memory n = key.moduli[j];
                if (n.length < 64 || n.length > key.emLength || n[0] == 0 || uint8(n[n.length - 1]) & 1 == 0) revert InvalidKey();
                hashes[j] = keccak256(n);
            }
            bytes32 h = keccak256(abi.encodePacked(key.emLength, hashes));
            if (keyState[h] != 0) revert InvalidKey();
            keyState[h] = (uint256(cap) << 64) | at;
            _currentKeys.push(h);
            emit KeyRegistered(at, h, key.emLength, key.moduli);
        }
        emit KeysRotated(at, cap);
    }

    /// @dev The signing key's hash and state; reverts unless it is in the current set.
    function _currentKey(Signature calldata sig) private view returns (bytes32 hash, uint256 state) {
        hash = keyHash(sig.key);
        state = keyState[hash];
        if (state == 0) revert UnknownKey(hash);
    }

    /// @dev Reverts unless `sig` (by a current key: see _currentKey) is an RS256 JWS over
    /// `message`. Reverting (rather than returning false) also keeps eth_estimateGas honest when
    /// modexp runs out of gas.
    function _verify(bytes memory message, Signature calldata sig) private view {
        bytes[] calldata moduli = sig.key.moduli;
        bytes[] calldata parts = sig.parts;
        uint256 count = moduli.length;
        if (count == 0 || count != parts.length) revert BadSignature();
        bytes32 digest = sha256(abi.encodePacked(sig.header, ".", _base64Url(message)));
        bytes memory em = _encodePkcs1(digest, sig.key.emLength);
        for (uint256 i = 0; i < count; i++) {
            bytes calldata n = moduli[i];
            bytes calldata s = parts[i];
            // RFC 8017 §5.2.2 step 1: the signature representative must be below the modulus.
            if (s.length != n.length || !_below(s, n) || !_matches(s, n, em, count == 1)) revert BadSignature();
        }
    }

    /// @dev s^e mod n == EM (one modulus, |EM| = |n|) or == EM mod n (a quorum member), through
    /// the EIP-198 precompile at 0x05, in scratch memory past the free memory pointer.
    function _matches(bytes calldata s, bytes calldata n, bytes memory em, bool whole) private view returns (bool ok) {
        assembly ("memory-safe") {
            let len := n.length
            let buf := mload(0x40)
            mstore(buf, len)
            mstore(add(buf, 32), 3)
            mstore(add(buf, 64), len)
            calldatacopy(add(buf, 96), s.offset, len)
            // e = 65537 as three bytes 01 00 01
            mstore8(add(buf, add(96, len)), 0x01)
            mstore8(add(buf, add(97, len)), 0x00)
            mstore8(add(buf, add(98, len)), 0x01)
            calldatacopy(add(buf, add(99, len)), n.offset, len)
            let out := add(buf, add(99, mul(2, len)))
            // Separate statements: Yul evaluates arguments right to left, and returndatasize()
            // must be read after the call.
            ok := staticcall(gas(), 5, buf, add(99, mul(2, len)), out, len)
            ok := and(ok, eq(returndatasize(), len))
            let got := keccak256(out, len)
            switch whole
            case 1 { ok := and(ok, eq(got, keccak256(add(em, 32), len))) }
            default {
                // EM mod n = EM^1 mod n
                let k := mload(em)
                let b := add(out, len)
                mstore(b, k)
                mstore(add(b, 32), 1)
                mstore(add(b, 64), len)
                mcopy(add(b, 96), add(em, 32), k)
                mstore8(add(b, add(96, k)), 0x01)
                calldatacopy(add(b, add(97, k)), n.offset, len)
                let reduced := add(b, add(97, add(k, len)))
                ok := and(ok, staticcall(gas(), 5, b, add(97, add(k, len)), reduced, len))
                ok := and(ok, eq(returndatasize(), len))
                ok := and(ok, eq(got, keccak256(reduced, len)))
            }
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

    /// @dev RFC 4648 §5 base64url without padding (RFC 7515 §2). The alphabet sits in scratch
    /// memory 0x1f..0x5e so that the low byte of mload(i) is its i-th letter (the free memory
    /// pointer and zero slot are restored after); four letters are assembled at 0x00 and stored
    /// with one mstore (the bytes after them are overwritten by the next group or lie past the end).
    function _base64Url(bytes memory data) private pure returns (bytes memory out) {
        uint256 len = data.length;
        uint256 full = len / 3;
        uint256 rest = len - full * 3;
        out = new bytes(full * 4 + (rest == 0 ? 0 : rest + 1));
        assembly ("memory-safe") {
            let free := mload(0x40)
            mstore(0x1f, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef")
            mstore(0x3f, "ghijklmnopqrstuvwxyz0123456789-_")
            let src := data
            let end := add(data, mul(full, 3))
            let dst := add(out, 32)
            for {} lt(src, end) {} {
                src := add(src, 3)
                let w := mload(src)
                mstore8(0, mload(and(shr(18, w), 0x3F)))
                mstore8(1, mload(and(shr(12, w), 0x3F)))
                mstore8(2, mload(and(shr(6, w), 0x3F)))
                mstore8(3, mload(and(w, 0x3F)))
                mstore(dst, mload(0))
                dst := add(dst, 4)
            }
            // The tail group reads only the bytes that exist (memory after `data` may be dirty).
            if rest {
                let w := shl(16, byte(0, mload(add(add(data, 32), mul(full, 3)))))
                if eq(rest, 2) { w := or(w, shl(8, byte(0, mload(add(add(data, 33), mul(full, 3)))))) }
                mstore8(dst, mload(and(shr(18, w), 0x3F)))
                mstore8(add(dst, 1), mload(and(shr(12, w), 0x3F)))
                if eq(rest, 2) { mstore8(add(dst, 2), mload(and(shr(6, w), 0x3F))) }
            }
            mstore(0x40, free)
            mstore(0x60, 0)
        }
    }

    function _call(address token, bytes memory data) private {
        (bool ok, bytes memory ret) = token.call(data);
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool))) || (ret.length == 0 && token.code.length == 0)) revert TransferFailed();
    }
}
