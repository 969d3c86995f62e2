"""Generate the labelled memory retrieval set (`memory_retrieval.json`) deterministically.

`python tests/data/memory_retrieval_gen.py` rewrites the file; the same seed gives the same bytes.
Business-operations episodes (invoices, refunds, orders, contracts, shipments, tickets) for four
agents, and queries of three kinds, each labelled with the episode(s) that answer it:
- `id`: names a document id (`INV-40213`, `ORD-7781`, `TCK-3302`) - lexical search should find it;
- `customer`: names a customer and a topic in other words than the episode;
- `paraphrase`: no id, different words ("wants their money back" for "requested a refund").
Retrieval is always filtered by the query's agent, as Atom does.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 11
EPISODES = 2400
OUT = Path(__file__).with_name("memory_retrieval.json")
AGENTS = ["billing-agent", "support-agent", "logistics-agent", "sales-agent"]
CUSTOMERS = [
    "Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Hooli", "Stark Industries", "Wayne Enterprises",
    "Wonka Foods", "Cyberdyne", "Soylent", "Tyrell Systems", "Vandelay Imports", "Pied Piper", "Dunder Mifflin",
    "Oscorp", "Massive Dynamic", "Gringotts", "Monarch Paper", "Nakatomi Trading", "Aperture Labs",
    "Black Mesa", "Virtucon", "Gekko and Co", "Bluth Company", "Prestige Worldwide", "Sterling Cooper",
    "Los Pollos", "Krusty Krab", "Oceanic Air", "Duff Brewing", "Planet Express", "Spacely Sprockets",
    "Cogswell Cogs", "Rekall", "Weyland Corp", "Blue Sun", "Buy n Large", "Ollivanders", "Zorg Industries",
    "Hanso Foundation", "Kwik-E-Mart", "Paper Street Soap", "Wernham Hogg", "Callister Inc", "Octan",
    "Yoyodyne", "Sirius Cybernetics", "Ajax Freight", "Contoso", "Fabrikam", "Northwind Traders",
    "Tailspin Toys", "Litware", "Proseware", "Adventure Works", "Wide World Importers", "Lucerne Publishing",
    "Margie Travel", "Alpine Ski House", "Coho Winery",
]  # fmt: skip
PRODUCTS = ["pumps", "laptops", "office chairs", "printer toner", "steel bolts", "coffee beans", "safety gloves",
            "solar panels", "forklift parts", "shipping pallets", "LED panels", "server racks"]  # fmt: skip
CITIES = ["Berlin", "Lyon", "Austin", "Osaka", "Leeds", "Porto", "Denver", "Krakow", "Turin", "Dublin"]

# topic -> (episode templates, paraphrase queries, customer queries); {c} customer, {i} id, {p} product...
TOPICS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "invoice_paid": (
        [
            "Invoice {i} for {c} was paid in full ({a} EUR) by bank transfer.",
            "{c} settled invoice {i}: {a} EUR received, marked as paid.",
        ],
        ["which customer's bill of {a} euros came in by transfer"],
        ["did {c} pay their bill"],
    ),
    "invoice_overdue": (
        [
            "Invoice {i} for {c} is {d} days overdue; a payment reminder was sent.",
            "Sent {c} a second dunning letter about overdue invoice {i} ({a} EUR).",
        ],
        ["reminder about a bill that is {d} days late"],
        ["is {c} late with a payment"],
    ),
    "invoice_disputed": (
        [
            "{c} disputed invoice {i}, saying they were charged twice for {p}.",
            "Dispute opened: {c} claims invoice {i} double-bills the {p} order.",
        ],
        ["customer says they were billed two times for {p}"],
        ["complaint from {c} about being overcharged"],
    ),
    "refund": (
        [
            "{c} requested a refund for order {o} because the {p} arrived damaged.",
            "Refund of {a} EUR approved for {c}, order {o}: broken {p} on delivery.",
        ],
        ["client wants their money back since the {p} came broken"],
        ["money back for {c}"],
    ),
    "address_change": (
        [
            "{c} moved their billing address to {city}; customer record updated.",
            "Updated the invoicing address of {c}: new office in {city}.",
        ],
        ["customer relocated its accounts department to {city}"],
        ["where should {c} invoices go now"],
    ),
    "contract_renewal": (
        [
            "Renewed the support contract with {c} for {n} more months at {a} EUR.",
            "{c} signed the contract extension: {n} months, {a} EUR.",
        ],
        ["agreement extended for {n} months"],
        ["has {c} extended its agreement"],
    ),
    "shipment_delay": (
        [
            "Shipment {o} of {p} to {c} is delayed {d} days at the {city} hub.",
            "Told {c} that order {o} ({p}) is stuck in {city}, about {d} days late.",
        ],
        ["delivery of {p} held up in {city}"],
        ["why is the {c} delivery late"],
    ),
    "purchase_order": (
        [
            "Approved purchase order {o} for {n} units of {p} from {c}.",
            "Purchase order {o}: {c} supplies {n} {p}, approved by finance.",
        ],
        ["we bought {n} {p} from a supplier"],
        ["what did we order from {c}"],
    ),
    "credit_limit": (
        [
            "Raised the credit limit of {c} to {a} EUR after a clean payment history.",
            "{c} credit line increased to {a} EUR.",
        ],
        ["customer allowed to owe up to {a} euros now"],
        ["how much credit does {c} get"],
    ),
    "support_ticket": (
        [
            "Ticket {t}: {c} cannot log in to the customer portal; password reset sent.",
            "Resolved ticket {t} for {c}: portal login failed, access restored.",
        ],
        ["someone locked out of the web portal"],
        ["{c} login trouble"],
    ),
}


def _fill(rng: random.Random, template: str, values: dict[str, str]) -> str:
    return template.format(**values)


def generate() -> dict[str, object]:
    rng = random.Random(SEED)
    used_ids: set[str] = set()

    def unique(prefix: str, digits: int) -> str:
        while True:
            value = f"{prefix}-{rng.randrange(10 ** (digits - 1), 10**digits)}"
            if value not in used_ids:
                used_ids.add(value)
                return value

    episodes = []
    for n in range(EPISODES):
        topic = rng.choice(sorted(TOPICS))
        values = {
            "c": rng.choice(CUSTOMERS),
            "i": unique("INV", 5),
            "o": unique("ORD", 4),
            "t": unique("TCK", 4),
            "p": rng.choice(PRODUCTS),
            "city": rng.choice(CITIES),
            "a": str(rng.randrange(200, 90_000)),
            "d": str(rng.randrange(3, 60)),
            "n": str(rng.choice([6, 12, 18, 24, 36, 50, 100, 250])),
        }
        text = _fill(rng, rng.choice(TOPICS[topic][0]), values)
        ident = next((values[k] for k in ("t", "o", "i") if values[k] in text), None)
        episodes.append(
            {
                "id": f"ep-{n:05d}",
                "agent": AGENTS[n % len(AGENTS)],
                "days_ago": round(rng.uniform(0, 80), 3),
                "text": text,
                "topic": topic,
                "customer": values["c"],
                "ident": ident,
                "values": values,
            }
        )

    combos: dict[tuple[str, str, str], list[str]] = {}
    for e in episodes:
        combos.setdefault((str(e["agent"]), str(e["customer"]), str(e["topic"])), []).append(str(e["id"]))
    queries = []
    order = list(range(len(episodes)))
    rng.shuffle(order)
    kinds = ["id", "customer", "paraphrase"]
    for k, index in enumerate(order):
        if len(queries) >= 240:
            break
        e = episodes[index]
        kind = kinds[k % 3]
        key = (str(e["agent"]), str(e["customer"]), str(e["topic"]))
        values = dict(e["values"])  # type: ignore[call-overload]
        if kind == "id":
            if not e["ident"]:
                continue
            query = rng.choice(["{x}", "what happened with {x}", "status of {x}"]).format(x=e["ident"])
            relevant = [e["id"]]
        elif kind == "customer":
            if len(combos[key]) > 2:
                continue
            query = _fill(rng, rng.choice(TOPICS[str(e["topic"])][2]), values)
            relevant = combos[key]
        else:
            if len(combos[key]) > 1:
                continue
            query = _fill(rng, rng.choice(TOPICS[str(e["topic"])][1]), values) + f" ({e['customer']})"
            relevant = [e["id"]]
        queries.append({"agent": e["agent"], "kind": kind, "query": query, "relevant": relevant})
    for e in episodes:
        del e["values"]
    return {"seed": SEED, "episodes": episodes, "queries": queries}


if __name__ == "__main__":
    OUT.write_text(json.dumps(generate(), indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
