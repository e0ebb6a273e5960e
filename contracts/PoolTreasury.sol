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

    /// @dev The first word of that encoding: 0x00 0x01 and 30 bytes of the 0xFF padding.
    uint256 private constant PKCS1_HEAD_WORD = 0x0001ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff;

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
        // Effects before the interaction: a re-entrant call finds the claim paid. The whole slot
        // is written (a bool assignment would read it first to keep the slot's other bytes,
        // which a mapping value has none of).
        assembly ("memory-safe") {
            mstore(0x00, claim)
            mstore(0x20, paid.slot)
            sstore(keccak256(0x00, 0x40), 1)
        }
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
    function keyHash(PoolKey calldata key) public pure returns (bytes32 hash) {
        bytes[] calldata moduli = key.moduli;
        uint256 count = moduli.length;
        uint256 emLength = key.emLength;
        // The hashed words, allocated; each modulus is copied to scratch memory past them to hash.
        uint256 words;
        assembly ("memory-safe") {
            words := mload(0x40)
            mstore(words, emLength)
            mstore(0x40, add(words, mul(32, add(count, 1))))
        }
        for (uint256 i = 0; i < count; i++) {
            bytes calldata n = moduli[i];
            assembly ("memory-safe") {
                let scratch := mload(0x40)
                calldatacopy(scratch, n.offset, n.length)
                mstore(add(words, mul(32, add(i, 1))), keccak256(scratch, n.length))
            }
        }
        assembly ("memory-safe") {
            hash := keccak256(words, mul(32, add(count, 1)))
        }
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
        bytes32 digest = _jwsDigest(sig.header, message);
        uint256 k = sig.key.emLength;
        if (count == 1) {
            // One modulus (Shoup): _register made |n| = |EM|, so s^e mod n must be EM itself.
            bytes calldata n = moduli[0];
            bytes calldata s = parts[0];
            if (s.length != n.length || !_below(s, n) || !_isEncoding(_power(s, n), k, digest)) revert BadSignature();
            return;
        }
        bytes memory em = _encodePkcs1(digest, k);
        for (uint256 i = 0; i < count; i++) {
            bytes calldata n = moduli[i];
            bytes calldata s = parts[i];
            // RFC 8017 §5.2.2 step 1: the signature representative must be below the modulus.
            if (s.length != n.length || !_below(s, n) || !_matchesReduced(_power(s, n), n, em)) revert BadSignature();
        }
    }

    /// @dev SHA-256 of the JWS signing input ASCII(header || '.' || BASE64URL(message)) (RFC 7515
    /// §5.1), assembled once in scratch memory past the free memory pointer. BASE64URL is RFC 4648
    /// §5 without padding (RFC 7515 §2), encoded 24 input bytes to one 32-letter word at a time:
    /// the eight 3-byte groups are spread to 4-byte lanes, each lane split into four 6-bit values
    /// (one per byte), and all 32 values mapped to their letters at once with byte-wise compares
    /// (v + 128 - c has its top bit set exactly when v >= c; no byte carries into the next, as
    /// v < 64). Bytes past the message are masked off before the last group is encoded; letters
    /// past the encoding's length are written but not hashed.
    function _jwsDigest(bytes calldata header, bytes memory message) private view returns (bytes32 digest) {
        assembly ("memory-safe") {
            let buf := mload(0x40)
            let hlen := header.length
            calldatacopy(buf, header.offset, hlen)
            mstore8(add(buf, hlen), 0x2e) // '.'
            let dst := add(add(buf, hlen), 1)
            let len := mload(message)
            let src := add(message, 32)
            for { let i := 0 } lt(i, len) { i := add(i, 24) } {
                let x := mload(add(src, i))
                let rest := sub(len, i)
                if lt(rest, 24) { x := and(x, not(shr(mul(8, rest), not(0)))) }
                // Groups 0-3 stay in bytes 0-11, 4-7 move to 16-27; then pairs, then single groups.
                x := or(and(x, 0xffffffffffffffffffffffff0000000000000000000000000000000000000000), shr(32, and(x, 0x000000000000000000000000ffffffffffffffffffffffff0000000000000000)))
                x := or(and(x, 0xffffffffffff00000000000000000000ffffffffffff00000000000000000000), shr(16, and(x, 0x000000000000ffffffffffff00000000000000000000ffffffffffff00000000)))
                x := or(and(x, 0xffffff0000000000ffffff0000000000ffffff0000000000ffffff0000000000), shr(8, and(x, 0x000000ffffff0000000000ffffff0000000000ffffff0000000000ffffff0000)))
                // Lane bits 31-8 hold a group: its four 6-bit values go to the lane's four bytes.
                let v := or(
                    or(and(shr(2, x), 0x3f0000003f0000003f0000003f0000003f0000003f0000003f0000003f000000), and(shr(4, x), 0x003f0000003f0000003f0000003f0000003f0000003f0000003f0000003f0000)),
                    or(and(shr(6, x), 0x00003f0000003f0000003f0000003f0000003f0000003f0000003f0000003f00), and(shr(8, x), 0x0000003f0000003f0000003f0000003f0000003f0000003f0000003f0000003f))
                )
                // 'A'-'Z' = v + 65, 'a'-'z' = v + 71 (v >= 26), '0'-'9' = v - 4 (v >= 52), '-' = 45 (v = 62), '_' = 95 (v = 63).
                let ones := 0x0101010101010101010101010101010101010101010101010101010101010101
                let ge26 := and(shr(7, add(v, mul(102, ones))), ones)
                let ge52 := and(shr(7, add(v, mul(76, ones))), ones)
                let ge62 := and(shr(7, add(v, mul(66, ones))), ones)
                let ge63 := and(shr(7, add(v, mul(65, ones))), ones)
                mstore(dst, sub(add(add(v, mul(65, ones)), add(mul(6, ge26), mul(49, ge63))), add(mul(75, ge52), mul(13, ge62))))
                dst := add(dst, 32)
            }
            if iszero(staticcall(gas(), 2, buf, add(add(hlen, 1), div(add(mul(len, 4), 2), 3)), 0x00, 0x20)) { revert(0, 0) }
            digest := mload(0x00)
        }
    }

    /// @dev s^65537 mod n through the EIP-198 precompile at 0x05. The input is laid out at the
    /// free memory pointer and the |n|-byte result written over it (the precompile reads its
    /// input before it returns), then allocated. Reverts if the call fails.
    function _power(bytes calldata s, bytes calldata n) private view returns (uint256 out) {
        assembly ("memory-safe") {
            let len := n.length
            out := mload(0x40)
            mstore(out, len)
            mstore(add(out, 32), 3)
            mstore(add(out, 64), len)
            calldatacopy(add(out, 96), s.offset, len)
            // e = 65537 as three bytes 01 00 01, then the modulus over the bytes after them
            mstore(add(out, add(96, len)), 0x0100010000000000000000000000000000000000000000000000000000000000)
            calldatacopy(add(out, add(99, len)), n.offset, len)
            // Separate statements: Yul evaluates arguments right to left, and returndatasize()
            // must be read after the call.
            let ok := staticcall(gas(), 5, out, add(99, mul(2, len)), out, len)
            if iszero(and(ok, eq(returndatasize(), len))) { revert(0, 0) }
            mstore(0x40, add(out, and(add(len, 31), not(31))))
        }
    }

    /// @dev Whether the k bytes at `out` are EMSA-PKCS1-v1_5 with SHA-256 of `digest` (RFC 8017
    /// §9.2): 0x00 0x01, k - 54 bytes 0xFF, 0x00, DigestInfo, digest. Compared word by word: the
    /// first word, every whole word of padding, the last padding word, DigestInfo and digest
    /// (k >= 128, see _register, so the words line up this way).
    function _isEncoding(uint256 out, uint256 k, bytes32 digest) private pure returns (bool ok) {
        assembly ("memory-safe") {
            ok := and(eq(mload(out), PKCS1_HEAD_WORD), and(eq(mload(add(out, sub(k, 64))), DIGEST_INFO_WORD), eq(mload(add(out, sub(k, 32))), digest)))
            let padding := mload(add(out, sub(k, 96)))
            for { let p := 32 } lt(add(p, 96), k) { p := add(p, 32) } { padding := and(padding, mload(add(out, p))) }
            ok := and(ok, eq(padding, not(0)))
        }
    }

    /// @dev Whether the |n| bytes at `out` are EM mod n (a quorum member's check), EM mod n
    /// computed as EM^1 mod n by the precompile, in scratch memory past the free memory pointer.
    function _matchesReduced(uint256 out, bytes calldata n, bytes memory em) private view returns (bool ok) {
        assembly ("memory-safe") {
            let len := n.length
            let k := mload(em)
            let b := mload(0x40)
            mstore(b, k)
            mstore(add(b, 32), 1)
            mstore(add(b, 64), len)
            mcopy(add(b, 96), add(em, 32), k)
            mstore8(add(b, add(96, k)), 0x01)
            calldatacopy(add(b, add(97, k)), n.offset, len)
            let reduced := add(b, add(97, add(k, len)))
            ok := staticcall(gas(), 5, b, add(97, add(k, len)), reduced, len)
            ok := and(ok, eq(returndatasize(), len))
            ok := and(ok, eq(keccak256(out, len), keccak256(reduced, len)))
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

    /// @dev Calls `token` with `data` (an EIP-20 transfer or transferFrom): success is a
    /// returned word equal to 1 (true), or no return data from an account with code (tokens that
    /// return nothing); anything else reverts with TransferFailed.
    function _call(address token, bytes memory data) private {
        bool ok;
        assembly ("memory-safe") {
            ok := call(gas(), token, 0, add(data, 32), mload(data), 0x00, 0x20)
            switch returndatasize()
            case 0 { ok := and(ok, gt(extcodesize(token), 0)) }
            default { ok := and(ok, and(gt(returndatasize(), 31), eq(mload(0x00), 1))) }
        }
        if (!ok) revert TransferFailed();
    }
}
