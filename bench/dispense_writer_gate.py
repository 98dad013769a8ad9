"""``$dispense`` by 8 pharmacies at once, with and without the SQLite writer gate
(``store/sql/engine.py``), on two copies of one SQLite world, in alternating rounds so both
see the same machine load: ``.venv/bin/python bench/dispense_writer_gate.py``.

The world is ``sokhoe.bench.prescribing``'s (192 people, 20 past prescriptions each, one
3-line prescription issued to each); each round dispenses 64 prescriptions in full, 8 threads
taking them in turn. One JSON line per round on stdout.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path
from datetime import UTC, datetime
import sokhoe.bench.prescribing as b
import sokhoe.store.sql.engine as eng
from sokhoe.store.sql import SqlStore
from sokhoe.access.guard import platform_repository
from sokhoe.access.principal import Principal
from sokhoe.access.accounts import ROLE_SCOPES
from sokhoe.operations.prescribe import run_prescribe

N, ROUNDS, PER = 192, 3, 32
folder = Path(tempfile.mkdtemp(prefix="rx-ab-"))
store = SqlStore(f"sqlite:///{folder/'w.db'}")
repo = platform_repository(store, "https://bench.invalid/fhir")
people = b.build(repo, N, 20)
b._pharmacies(repo, 8)
doctor = repo.for_caller(Principal("staff","bs","BS","doctor",b.A,scopes=ROLE_SCOPES["doctor"]))
issued = []
for pid, eid in people:
    body={"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":f"Patient/{pid}"}},{"name":"encounter","valueReference":{"reference":f"Encounter/{eid}"}},*({"name":"line","part":[{"name":"resource","resource":b._line(c)},{"name":"override","valueString":"x"}]} for c in b.NEW)]}
    r = run_prescribe(doctor, body, datetime.now(UTC)); issued.append((r.code, r.requests))
store.close()
for v in ("gate", "nogate"):
    shutil.copy(folder/"w.db", folder/f"{v}.db")
real_of = eng._WriterGate.of
stores = {}
for v in ("gate", "nogate"):
    eng._WriterGate.of = real_of if v == "gate" else (lambda db: None)  # type: ignore
    s = SqlStore(f"sqlite:///{folder/f'{v}.db'}")
    r = platform_repository(s, "https://bench.invalid/fhir")
    ph = []
    for n in range(8):
        code = f"01{900 + n}"
        ph.append(r.for_caller(Principal("staff", f"ds.{n}", f"DS. {n}", "pharmacist", code, scopes=ROLE_SCOPES["pharmacist"])))
    stores[v] = (s, r, ph)
eng._WriterGate.of = real_of
out = {"gate": [], "nogate": []}
for k in range(ROUNDS):
    for v in (("gate", "nogate") if k % 2 == 0 else ("nogate", "gate")):
        s, r, ph = stores[v]
        res = b._dispense_concurrently(r, issued[k*PER*2:(k+1)*PER*2], ph)
        res["load"] = os.getloadavg()[0]
        out[v].append(res)
        print(v, k, json.dumps(res), flush=True)
