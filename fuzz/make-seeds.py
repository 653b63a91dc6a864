#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/seeds/<target>/, from examples/ and the inputs the tests
use. Deterministic: run it again after changing the examples (`python3 fuzz/make-seeds.py`)."""
import copy
import hashlib
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
EX = ROOT / "examples"


def load(name):
    return json.loads((EX / name).read_text())


def write(target, items):
    d = SEEDS / target
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for item in items:
        data = item if isinstance(item, bytes) else item.encode()
        (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def dumps(v):
    return json.dumps(v, separators=(",", ":"))


llm = load("llm-provider.catalog.json")
cloud = load("cloud-analytics.catalog.json")
snapshot = load("llm-snapshot.json")

# ---- catalog: both examples, and broken variants of the kinds docs/errors.md shows.
broken = copy.deepcopy(llm)
broken["features"][0]["key"] = "Tokens"
broken["plans"][0]["currency"] = "USX"
broken["billableMetrics"][0].pop("valueProperty", None)
tiers = copy.deepcopy(llm)
tiers["plans"][0]["prices"][0]["model"] = {"type": "graduated", "tiers": [
    {"upTo": "1000", "unitPrice": "0.002"}, {"upTo": "500", "unitPrice": "-0.001"}, {"upTo": "2000"}]}
write("catalog", [(EX / "llm-provider.catalog.json").read_text(), (EX / "cloud-analytics.catalog.json").read_text(),
                  dumps(broken), dumps(tiers), '{"schemaVersion": 1, "products": [', "{}", "[]"])

# ---- snapshot: the example, the cloud catalog with the example's customers reshaped, and updates.
newer = copy.deepcopy(snapshot)
newer["snapshotVersion"] = 2
newer["customers"] = newer["customers"][:2]
newer["customers"][0]["grants"] = [{"id": "grt_more", "featureKey": "input-tokens", "amount": "9"}]
cloud_snap = {"snapshotVersion": 3, "issuedAt": "2026-11-01T00:00:00Z", "catalog": cloud, "customers": [
    {"id": "cus_c", "subscriptions": [{"id": "s", "planId": cloud["plans"][0]["id"], "startedAt": "2026-11-01T00:00:00Z"}]}]}
write("snapshot", [(EX / "llm-snapshot.json").read_text(), dumps(newer), dumps(cloud_snap),
                   dumps({"snapshotVersion": 1, "catalog": llm, "customers": []})])

# ---- event: the example events one per file, all of them as one file, and odd shapes.
lines = [l for l in (EX / "llm-events.jsonl").read_text().splitlines() if l.strip()]
events = lines[:12] + ["\n".join(lines[:16])]
events.append(dumps({"id": "e", "source": "s", "type": "llm.completion", "subject": "cus_trial",
                     "time": "2026-11-28T09:00:00Z", "data": {"input_tokens": "5000", "model": "small"}}))
events.append(dumps({"id": "e", "source": "s", "type": "llm.completion", "subject": "cus_dev",
                     "time": "2026-10-01T09:00:00Z", "data": {"input_tokens": -1}}))
write("event", events)

# ---- consume: selector byte + quantity text.
write("consume", [bytes([s]) + q for s in (0, 1, 2, 17, 33) for q in (b"1", b"1.5", b"1000", b"0")]
      + [b"\x00-1", b"\x021001", b"\x00\"12\"", b"\x001e3", b"\x0079228162514264337593543950335"])

# ---- rate: every price model of both catalogs (and overrides), with a quantity and events.
models = []
for cat in (llm, cloud):
    for plan in cat["plans"]:
        for price in plan["prices"]:
            models.append(price["model"])
for c in snapshot["customers"]:
    for s in c.get("subscriptions", []):
        models.extend(s.get("priceOverrides", {}).values())
rate_events = dumps([1, "2.5", {"value": 3, "data": {"unit_price": "1.2", "model": "small"}},
                     {"value": "4", "data": {"model": "large"}}])
rates = dumps({**llm.get("rates", {}), **cloud.get("rates", {})} or {"gpu-spot": "3.50"})
rate = []
for i, m in enumerate(models):
    currency = ["USD", "JPY", "KWD"][i % 3]
    rate.append("\0".join([dumps(m), "1234.5", "7", rate_events, rates, currency]))
rate.append("\0".join([dumps({"type": "per_unit", "unitPrice": "79228162514264337593543950335"}), "2", "", "", "", "USD"]))
write("rate", rate)

# ---- quote: the example usage, as a request, and odd quantities.
usage = load("llm-usage.json")
write("quote", [(EX / "llm-usage.json").read_text(), (EX / "cloud-analytics-usage.json").read_text(),
                dumps({"planId": "plan_developer", "usage": usage, "eventCount": 10}),
                dumps({"bm_input": {"small": 100, "large": "2e3"}}), dumps({"bm_input": "lots"}),
                dumps({"bm_input": -5, "bm_nope": 1})])

# ---- sync_messages: SPEC §7's request and response on the lease an edge of the target holds,
# and an exported edge state.
key = {"customerId": "cus_acme", "key": "input-tokens", "period": "2026-11-01T00:00:00Z"}
request = {"edgeId": "fra-1", "bootId": "b7c1", "seq": 1, "catalogVersion": 7,
           "leases": [dict(key, used="1660", returned="0", grantedSeen="2000", want="2000", final=False),
                      dict(key, epoch=1, used="5", want="20000")],
           "events": [json.loads(lines[0])]}
response = {"ackSeq": 1, "leases": [dict(key, granted="4000", ttlMs=30000, mode="normal", shrinkTo=None),
                                    dict(key, epoch=1, granted="1", ttlMs=0, mode="closed", othersUsage="7")],
            "snapshot": None}
precise = {"ackSeq": 1, "leases": [dict(key, granted="100", ttlMs=1, mode="precise", shrinkTo="50")]}
state = {"edgeId": "fra-1", "bootId": "b7c1", "seq": 3, "ttlMs": 30000, "lastAnswer": 1795860000000,
         "inFlight": [[3, 1795860000000]],
         "leases": [dict(key, epoch=0, granted="2000", returned="0", used="1660", expiresAt=1795860030000,
                         mode="normal", othersUsage="10", demand="0", usedAtRequest="1000")],
         "finished": [dict(key, epoch=0, granted="5", returned="1", used="4")],
         "events": [{"seq": 2, "event": json.loads(lines[1])}]}
write("sync_messages", ["\0".join([dumps(request), dumps(response), dumps(state)]),
                        "\0".join([dumps(request), dumps(precise), ""]), "\0".join(["{}", "{}", "{}"])])

# ---- signed: the signed example snapshot, a tampered one, the demo key file and a bare key.
signed = (EX / "llm-snapshot.signed.json").read_text()
env = json.loads(signed)
tampered = dict(env, signature=env["signature"][:-4] + "AAA=")
short = {"payload": "e30=", "signature": "AAAA", "keyId": "demo-hub"}
write("signed", [signed, dumps(tampered), dumps(short), (EX / "keys" / "demo-hub.json").read_text(),
                 "6RRKGBteqhMQm41FnCH0SWElx2GAMfUo0mbM4aUYBxw=", dumps(json.loads(lines[0]))])

# ---- hub_requests: one request of each kind (letter + JSON body), and a session of several.
customer = {"id": "cus_fuzz", "subscriptions": [{"id": "sub_f", "planId": "plan_developer", "startedAt": "2026-11-01T00:00:00Z"}],
            "wallet": {"currency": "USD", "balance": "5"}}
grant = {"id": "grt_promo", "featureKey": "input-tokens", "amount": "50000"}
topup = {"amount": "25.00", "idempotencyKey": "topup-1", "currency": "USD"}
close = {"customerId": "cus_dev", "at": "2026-10-15T00:00:00Z"}
hub_sync = dict(request, edgeId="fra-1", leases=[dict(key, customerId="cus_dev", used="0", want="100")])
batch = {"events": [json.loads(l) for l in lines[:3]]}
hub = ["C" + dumps(llm), "U" + dumps(customer), "G" + dumps(grant), "W" + dumps(topup), "X" + dumps(close),
       "Y" + dumps(hub_sync), "E" + dumps(batch), "E" + dumps([json.loads(lines[0])])]
hub.append("\0".join(["U" + dumps(customer), "G" + dumps(grant), "W" + dumps(topup), "W" + dumps(topup),
                       "E" + dumps(batch), "Y" + dumps(hub_sync), "X" + dumps(dict(close, customerId="cus_fuzz"))]))
write("hub_requests", hub)

# ---- the dictionary libFuzzer splices into inputs: every key and short string of the examples,
# and the words of the formats (SPEC §3-§7).
words = set()


def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            words.add(k)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
    elif isinstance(v, str) and len(v) <= 32:
        words.add(v)


for doc in (llm, cloud, snapshot, request, response, state, customer, grant, topup, close,
            *[json.loads(l) for l in lines]):
    walk(doc)
words |= {"flat", "per_unit", "package", "graduated", "volume", "percentage", "graduated_percentage", "dynamic",
          "matrix", "SUM", "COUNT", "AVG", "MIN", "MAX", "UNIQUE_COUNT", "LATEST", "WEIGHTED_SUM", "P0D", "P1D",
          "P1W", "P1M", "P3M", "P1Y", "in_advance", "in_arrears", "instant", "boolean", "static", "metered",
          "up", "down", "null", "true", "false", "-0", "1e28", "79228162514264337593543950335", "0.0000000000000000000000000001",
          "2026-11-01T00:00:00Z", "2026-02-29T00:00:00+01:00", "$wallet", "normal", "precise", "closed"}
escaped = sorted(w.replace("\\", "\\\\").replace('"', '\\"') for w in words if w.isascii() and w.isprintable())
(ROOT / "fuzz" / "tollgate.dict").write_text(
    "# libFuzzer dictionary for Tollgate's inputs; written by fuzz/make-seeds.py\n"
    + "".join(f'"{w}"\n' for w in escaped))

print("seeds written to", SEEDS)
