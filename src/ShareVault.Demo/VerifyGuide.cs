namespace ShareVault.Demo;

/// <summary>VERIFY.md: how a sceptic checks every demo artefact with standard tools, without trusting ShareVault.</summary>
internal static class VerifyGuide
{
    public const string Text = """
        # Checking the demo's artefacts without ShareVault

        Everything here can be checked with OpenSSL, Python (`pip install cryptography cbor2`) or any
        JOSE / COSE library. Nothing below runs ShareVault code.

        | file | what it is |
        |---|---|
        | `jwks.json` | the pool's public keys (RFC 7517), one per 2-of-3 quorum; `kid` = `pool-1/<custodian>+<custodian>` |
        | `payouts/<claim>.jws` | the payout instruction, JWS compact serialization, RS256, signed by two custodians (SoftHSM tokens custody-a, custody-b; TPM custody-t) |
        | `evidence/<device>/<seq>.cose` | each evidence record the service stored: COSE_Sign1 (RFC 9052), ES256 |
        | `devices/<device>.pem` | each device's P-256 public key (its private key never left its token) |
        | `ledger.json` | the pool ledger export: hash-chained entries, signed checkpoints, policies, evidence |
        | `audit/<custodian>.jsonl` | each custody node's own hash-chained log of every request it signed or refused |
        | `admin/pool-admin.pem` | the pool administrator's P-256 public key: it signed the pool, policies, premiums and devices |
        | `members/<member>.pem` | the neighbours' P-256 public keys (their key files `members/<member>.key` stay with them): they signed their joins and votes |
        | `chain.json` | the dev chain's treasury and token addresses, members' addresses, deposits, the settlements and anchors |

        ## 1. The payout is an ordinary RS256 JWS

        Any JOSE library: verify `payouts/*.jws` against `jwks.json` (select the key by the header's `kid`).
        With OpenSSL alone:

        ```sh
        jws=$(cat payouts/*.jws)
        printf '%s' "${jws%.*}" > signing-input                          # header.payload
        b64d() { local s=$(echo -n "$1" | tr '_-' '/+'); while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done; echo "$s" | base64 -d; }
        b64d "${jws##*.}" > signature.bin
        b64d "${jws%%.*}"; echo                                           # the header: alg RS256 and the kid
        b64d "$(echo "$jws" | cut -d. -f2)"; echo                         # the payout instruction (canonical JSON)
        python3 - <<'PY'                                                  # jwks.json -> one PEM per kid
        import json, base64
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
        from cryptography.hazmat.primitives import serialization
        d = lambda s: int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")
        for k in json.load(open("jwks.json"))["keys"]:
            pem = RSAPublicNumbers(d(k["e"]), d(k["n"])).public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            open(k["kid"].replace("/", "_") + ".pem", "wb").write(pem)
        PY
        openssl dgst -sha256 -verify pool-1_<the kid's custodians>.pem -signature signature.bin signing-input   # "Verified OK"
        ```

        ## 2. Every evidence record is a COSE_Sign1 by its device

        ```python
        import cbor2, glob, sys
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        for device in ["kit-flood", "kit-quiet"]:
            key = serialization.load_pem_public_key(open(f"devices/{device}.pem", "rb").read())
            for path in glob.glob(f"evidence/{device}/*.cose"):
                msg = cbor2.loads(open(path, "rb").read())
                protected, _, payload, sig = msg.value if hasattr(msg, "value") else msg   # tag 18
                to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])       # RFC 9052 §4.4
                r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
                key.verify(encode_dss_signature(r, s), to_be_signed, ec.ECDSA(hashes.SHA256()))
                print(path, cbor2.loads(payload))   # 1 version, 2 device, 3 seq, 4 time ms, 5 prev hash, 6 readings
        ```

        The payload format (CBOR keys, SenML-style readings, the previous-record hash chain) is specified
        in the repository's `docs/evidence-format.md`.

        ## 3. The ledger

        `ledger.json` holds hash-chained entries: each entry's `hash` is SHA-256 over the canonical JSON
        (RFC 8785 style: sorted keys, no whitespace) of the entry without its hash, including the previous
        entry's hash; checkpoints are RS256 JWSs by the pool key over the entry hash at their sequence, and
        verify exactly like the payout above. The claim entry names the evidence records (device,
        sequence, SHA-256 of the COSE bytes) that triggered it and the SHA-256 of the rule text
        `water_leak == 1 for 10m`, so anyone can re-evaluate the rule from the evidence files: the claim
        opens when `water_leak` stays 1 for 10 minutes of device time. `docs/claims-service.md` gives the
        exact entry format. ShareVault's own check is `sharevault ledger verify --in ledger.json`.

        ## 4. The custody nodes' audit logs

        Each custodian ran as its own `sharevault node run` process holding only its own PIN (or TPM auth
        value); the claims service reached them over mutual TLS and held none. Before its hardware signed,
        each node brought its own copy of the ledger up to date from the request (refusing forks and
        registry changes without the administrator's signature), and for a payout re-verified every cited
        COSE record and re-ran the trigger. `audit/<custodian>.jsonl` is its log, one JSON line per
        request: `seq`, `time`, `prev` (the previous line's `hash`, 64 zeros first), the request (key,
        kid, purpose, pool, claim, SHA-256 of the signed bytes — never the bytes), the outcome
        (`signed`, or `refused` with a code and reason) and the coordinator's certificate thumbprint;
        `hash` is SHA-256 over the RFC 8785 canonical JSON of the line without `hash`. Check a chain:

        ```python
        import json, hashlib
        def canon(v):  # RFC 8785 for the strings, integers and nulls these lines hold
            if isinstance(v, dict): return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canon(v[k]) for k in sorted(v)) + "}"
            if isinstance(v, list): return "[" + ",".join(canon(x) for x in v) + "]"
            return json.dumps(v, ensure_ascii=False)
        for name in ["custody-a", "custody-b", "custody-t"]:
            prev = "0" * 64
            for line in open(f"audit/{name}.jsonl"):
                entry = json.loads(line); h = entry.pop("hash")
                assert entry["prev"] == prev and hashlib.sha256(canon(entry).encode()).hexdigest() == h, (name, entry["seq"])
                prev = h
                print(name, entry["seq"], entry["op"], entry["request"].get("purpose"), entry["outcome"]["result"])
        ```

        The payout's two signers each have a `signed` payout line whose `signing_input_sha256` is the
        SHA-256 of the JWS's `header.payload`; every checkpoint in `ledger.json` was signed by custody-a and
        the TPM node custody-t. ShareVault's own check is `sharevault node audit --data-dir nodes/<custodian> --verify`.
        The demo starts each run's service state afresh, and the nodes' ledger copies with it; their audit logs
        only grow, one block of lines per run. The treasury payout message (purpose `settlement`) has a
        `signed` line at each of its two signers too.

        ## 5. The treasury on chain

        The demo ran an anvil dev chain on loopback (stopped when the demo ended; every run deploys
        afresh), the test stablecoin and the pool's `PoolTreasury` contract (the repository's
        `contracts/PoolTreasury.sol`, `docs/treasury.md`). `chain.json` records its RPC URL, chain id,
        the treasury and token addresses, the members' addresses, the deposits, the settlements and the
        anchored checkpoints, and the event topics (keccak256 of each event signature). The demo itself
        made the calls below (the anchoring step); against a live chain any JSON-RPC client makes them:

        ```sh
        RPC=$(jq -r .rpc chain.json); T=$(jq -r .treasury chain.json); TOKEN=$(jq -r .token chain.json)
        ADDR=$(jq -r '.members["household-flood"]' chain.json)
        rpc() { curl -s "$RPC" -H 'content-type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}"; }
        # the member's token balance: balanceOf(address), selector 0x70a08231; 6 decimals, 10^4 units per cent
        rpc eth_call "[{\"to\":\"$TOKEN\",\"data\":\"0x70a08231000000000000000000000000${ADDR#0x}\"},\"latest\"]"
        # the events: premiums in, the payout out, the anchored checkpoint
        for e in Deposited PaidOut CheckpointAnchored; do
          rpc eth_getLogs "[{\"address\":\"$T\",\"fromBlock\":\"0x0\",\"topics\":[\"$(jq -r .topics.$e chain.json)\"]}]" | jq '.result | length'
        done
        # the anchored checkpoint: the CheckpointAnchored event's data holds the payload itself
        # (chain.json copies it); it must be ledger.json's last checkpoint, byte for byte
        jq -r '.anchors[-1].payload' chain.json
        jq -c '.checkpoints[-1] | {hash, pool: "pool-1", seq, time}' ledger.json
        ```

        - **PaidOut** (topics: claim = SHA-256 of the claim id, token, recipient), one per payout: the
          recipient is the member's address from the admin-signed `payout_address` entry, the amount is
          the payout in token units (250.00 EUR by the rule = 250000000, 150.00 EUR by the neighbours'
          votes = 150000000), and each `payout_settled` entry in `ledger.json` names its transaction. The treasury paid only because the pool key's threshold signature over
          the 120-byte message `"SVP1" || chain id || treasury || claim || token || to || amount` verified
          on chain, and each custody node that signed it had checked, in its own copy of the ledger,
          that the claim was paid, the amount, the recipient and the treasury.
        - **Deposited** (topics: token, from, member = SHA-256 of the member id): each premium entry in
          `ledger.json` has the payment reference `eip155:31337:TX_HASH:LOG_INDEX` of its deposit.
        - **CheckpointAnchored**: the payload is ledger.json's checkpoint; SHA-256 of it is the anchor's
          key, and the contract accepted it only with the pool key's signature. A rewritten ledger no
          longer has that hash at that sequence number.

        ShareVault's own check (the demo ran it on `ledger.json`): `sharevault ledger verify --in ledger.json
        --chain RPC_URL --treasury ADDRESS` — the offline checks, then every anchored checkpoint against the
        export's entries, every `payout_settled` entry against its PaidOut event, every PaidOut against a
        payout of the export, and every on-chain premium against its Deposited event.

        ## 6. The members' votes

        The repair claim (policy `repair-household-flood`, `votes_required` 2) was decided by two
        neighbours, each logged in over the service's HTTP API with their own key file. Each vote is a
        `vote` entry in `ledger.json` whose body (`claim`, `member`, `approve`) carries `member_sig`:
        `kid` (the RFC 7638 thumbprint of the member's key) and `sig`, a detached JWS (RFC 7515 App. F),
        ES256, over the canonical action `{"body": BODY without member_sig, "kind": "vote", "pool": "pool-1"}`
        (RFC 8785). The key is the one the member recorded in their own `member_joined` entry (signed the
        same way, by that key). The `decision` entry names the vote entries it counted (`"votes": [seq…]`):
        each must be a distinct member's vote on that claim, for the decided side, not the claimant's, at
        least the policy's `votes_required`. Check the signatures:

        ```python
        import json, base64
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        def canon(v):  # RFC 8785 for the strings, integers, booleans and nulls these bodies hold
            if isinstance(v, dict): return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canon(v[k]) for k in sorted(v)) + "}"
            if isinstance(v, list): return "[" + ",".join(canon(x) for x in v) + "]"
            return json.dumps(v, ensure_ascii=False)
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
        unb64 = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        ledger = json.load(open("ledger.json")); entries = {e["seq"]: e for e in ledger["entries"]}
        keys = {e["body"]["member"]: serialization.load_pem_public_key(e["body"]["key"].encode())
                for e in ledger["entries"] if e["kind"] == "member_joined" and "key" in e["body"]}
        for e in ledger["entries"]:
            if e["kind"] not in ("vote", "member_joined") or "member_sig" not in e["body"]: continue
            body = dict(e["body"]); sig = body.pop("member_sig"); body.pop("admin", None)
            action = canon({"body": body, "kind": e["kind"], "pool": ledger["pool"]["id"]}).encode()
            header, _, signature = sig["sig"].split(".")
            raw = unb64(signature)
            keys[body["member"]].verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                                        header.encode() + b"." + b64(action), ec.ECDSA(hashes.SHA256()))
            print(e["seq"], e["kind"], body["member"], body.get("claim", ""), body.get("approve", ""), "signature OK")
        for e in ledger["entries"]:
            if e["kind"] == "decision" and e["body"].get("by") == "votes":
                print("decision", e["body"]["claim"], e["body"]["decision"], "by votes", [entries[s]["body"]["member"] for s in e["body"]["votes"]])
        ```

        `sharevault ledger verify --in ledger.json` makes the same checks (and the custody nodes make
        them before they sign the payout), so an export whose vote was altered, dropped or re-attributed
        to another member is refused.
        """;
}
