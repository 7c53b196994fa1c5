#!/usr/bin/env python3
"""Generate a realistic series of nightly PostgreSQL dumps for dedup benchmarks.

Builds an app-like database (orders ~90% of the bytes, customers, products, and an
append-only events table) in a throwaway database, then for each night:
  * inserts ~3% new orders, ~1% new customers, appends events,
  * updates ~2% of orders (status, updated_at, tracking) with an exponential bias
    toward recent rows, touches a few customers,
  * deletes ~0.01% of orders,
  * runs VACUUM (not FULL) so freed space is reused by the next night's writes,
  * dumps with `pg_dump --format=plain` -> night-N.sql and
    `pg_dump --format=custom --compress=0` -> night-N.dump.

Deterministic: everything is driven by a seeded random.Random; autovacuum is disabled
on the tables so that only the explicit VACUUM runs; timestamps are synthetic.

Usage: python3 pg_nights.py --out /var/tmp/cairn-dumps-exp/dumps [--orders 900000]
       [--nights 7] [--seed 42] [--host 127.0.0.1] [--port 5432] [--user postgres]
"""
import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import time

DB = "cairn_dumps_bench"

WORDS = (
    "red green blue fast slow large small premium basic express standard gift wrap "
    "fragile handle with care leave at door ring bell call before delivery weekend "
    "office home back entrance side gate reception locker neighbour signed contact "
    "customer requested change address invoice refund partial discount coupon promo "
    "bulk order repeat subscription monthly annual trial upgrade downgrade priority"
).split()
STREETS = ["Main St", "Oak Ave", "Pine Rd", "Maple Dr", "Cedar Ln", "Elm St", "Lake Blvd",
           "Hill Rd", "Park Ave", "River Way", "Sunset Blvd", "Station Rd", "Church St"]
CITIES = ["Springfield", "Riverton", "Lakeside", "Hillview", "Fairmont", "Georgetown",
          "Ashland", "Brookfield", "Clayton", "Dover", "Easton", "Franklin", "Milton"]
FIRST = ["Ana", "Ben", "Carla", "David", "Eva", "Frank", "Grace", "Hugo", "Ines", "Jack",
         "Kim", "Leo", "Mia", "Nora", "Omar", "Paula", "Quinn", "Rosa", "Sam", "Tina"]
LAST = ["Smith", "Garcia", "Muller", "Rossi", "Dubois", "Silva", "Novak", "Kowalski",
        "Jensen", "Tanaka", "Nguyen", "Brown", "Lopez", "Martin", "Weber", "Costa"]
STATUSES_NEW = ["pending", "paid"]
STATUS_FLOW = {"pending": "paid", "paid": "shipped", "shipped": "delivered",
               "delivered": "returned", "returned": "refunded", "refunded": "refunded",
               "cancelled": "cancelled"}
EVENT_KINDS = ["login", "logout", "view_product", "add_to_cart", "checkout", "payment",
               "search", "review", "support_ticket", "password_reset"]

SCHEMA = """
DROP TABLE IF EXISTS events, orders, customers, products;
CREATE TABLE customers (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  city text NOT NULL,
  address text NOT NULL,
  created_at timestamptz NOT NULL,
  last_login timestamptz
) WITH (autovacuum_enabled = false);
CREATE TABLE products (
  id integer PRIMARY KEY,
  sku text NOT NULL,
  title text NOT NULL,
  price numeric(10,2) NOT NULL,
  description text NOT NULL
) WITH (autovacuum_enabled = false);
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL,
  product_id integer NOT NULL,
  status text NOT NULL,
  quantity integer NOT NULL,
  unit_price numeric(10,2) NOT NULL,
  amount numeric(12,2) NOT NULL,
  currency char(3) NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  tracking_code text,
  shipping_address text NOT NULL,
  notes text
) WITH (autovacuum_enabled = false);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_updated_idx ON orders (updated_at);
CREATE TABLE events (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL,
  kind text NOT NULL,
  at timestamptz NOT NULL,
  payload text NOT NULL
) WITH (autovacuum_enabled = false);
"""

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def esc(s):
    if s is None:
        return "\\N"
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Gen:
    def __init__(self, seed, n_products):
        self.r = random.Random(seed)
        self.n_products = n_products
        self.prices = {}

    def phrase(self, lo, hi):
        r = self.r
        return " ".join(r.choice(WORDS) for _ in range(r.randint(lo, hi)))

    def address(self):
        r = self.r
        return "%d %s, %s %05d" % (r.randint(1, 9999), r.choice(STREETS), r.choice(CITIES),
                                   r.randint(1000, 99999))

    def product(self, pid):
        r = self.r
        price = round(r.uniform(2, 500), 2)
        self.prices[pid] = price
        return [str(pid), "SKU-%06d" % pid, self.phrase(2, 5).title(), "%.2f" % price,
                self.phrase(10, 30)]

    def customer(self, cid, t):
        r = self.r
        f, l = r.choice(FIRST), r.choice(LAST)
        return [str(cid), "%s %s" % (f, l), "%s.%s%d@example.com" % (f.lower(), l.lower(), cid),
                r.choice(CITIES), self.address(), ts(t),
                ts(t + dt.timedelta(seconds=r.randint(0, 86400 * 30))) if r.random() < 0.8 else None]

    def order(self, oid, n_customers, t, old=False):
        """old=True: a historical order that has already been delivered (or returned)."""
        r = self.r
        pid = r.randint(1, self.n_products)
        q = r.choice([1, 1, 1, 1, 2, 2, 3, 4, 5, 10])
        up = self.prices[pid]
        notes = self.phrase(3, 14) if r.random() < 0.6 else None
        if old:
            st = "returned" if oid % 50 == 0 else "delivered"
            upd, trk = t + dt.timedelta(days=3), "TRK%010d" % oid
        else:
            st, upd, trk = r.choice(STATUSES_NEW), t, None
        return [str(oid), str(r.randint(1, n_customers)), str(pid), st, str(q),
                "%.2f" % up, "%.2f" % (up * q), r.choice(["EUR", "EUR", "USD", "GBP"]), ts(t), ts(upd),
                trk, self.address(), notes]

    def event(self, eid, n_customers, t):
        r = self.r
        kind = r.choice(EVENT_KINDS)
        payload = '{"ip":"10.%d.%d.%d","ua":"%s","ref":"%s"}' % (
            r.randint(0, 255), r.randint(0, 255), r.randint(0, 255),
            r.choice(["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)",
                      "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "okhttp/4.12"]),
            r.choice(WORDS))
        return [str(eid), str(r.randint(1, n_customers)), kind, ts(t), payload]


def copy_block(table, cols, rows):
    out = ["COPY %s (%s) FROM stdin;" % (table, ", ".join(cols))]
    for row in rows:
        out.append("\t".join(esc(v) for v in row))
    out.append("\\.")
    return "\n".join(out) + "\n"


ORDER_COLS = ["id", "customer_id", "product_id", "status", "quantity", "unit_price", "amount",
              "currency", "created_at", "updated_at", "tracking_code", "shipping_address", "notes"]


class PG:
    def __init__(self, a):
        self.base = ["-h", a.host, "-p", str(a.port), "-U", a.user]

    def run_sql(self, sql, db=DB):
        p = subprocess.run(["psql", *self.base, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"],
                           input=sql.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            sys.exit("psql failed: " + p.stderr.decode()[-2000:])
        return p.stdout.decode()

    def dump(self, fmt, path):
        args = ["pg_dump", *self.base, "-d", DB, "--format=" + fmt, "-f", path]
        if fmt == "custom":
            args.insert(-2, "--compress=0")
        subprocess.run(args, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/var/tmp/cairn-dumps-exp/dumps")
    ap.add_argument("--orders", type=int, default=900_000)
    ap.add_argument("--customers", type=int, default=60_000)
    ap.add_argument("--products", type=int, default=5_000)
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--events-per-night", type=int, default=25_000)
    ap.add_argument("--nights", type=int, default=7)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5432)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--update-mean", type=float, default=0.05,
                    help="mean distance (fraction of the table) of updated orders from the newest row")
    ap.add_argument("--keep-db", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    pg = PG(a)
    g = Gen(a.seed, a.products)
    r = g.r

    pg.run_sql("DROP DATABASE IF EXISTS %s;\nCREATE DATABASE %s;\n" % (DB, DB), db="postgres")
    try:
        t0 = time.time()
        pg.run_sql(SCHEMA)
        # Initial history: orders spread over the year before BASE, in id order.
        start = BASE - dt.timedelta(days=365)
        span = 365 * 86400
        sql = [copy_block("products", ["id", "sku", "title", "price", "description"],
                          (g.product(i) for i in range(1, a.products + 1)))]
        sql.append(copy_block("customers", ["id", "name", "email", "city", "address", "created_at", "last_login"],
                              (g.customer(i, start + dt.timedelta(seconds=span * i // a.customers))
                               for i in range(1, a.customers + 1))))
        pg.run_sql("".join(sql))
        n_cust = a.customers
        step = 100_000
        for lo in range(1, a.orders + 1, step):
            hi = min(a.orders, lo + step - 1)
            pg.run_sql(copy_block("orders", ORDER_COLS,
                                  (g.order(i, n_cust, start + dt.timedelta(seconds=span * i // a.orders),
                                           old=i <= int(a.orders * 0.95))
                                   for i in range(lo, hi + 1))))
        pg.run_sql(copy_block("events", ["id", "customer_id", "kind", "at", "payload"],
                              (g.event(i, n_cust, start + dt.timedelta(seconds=span * i // a.events))
                               for i in range(1, a.events + 1))))
        pg.run_sql("VACUUM ANALYZE;\nCHECKPOINT;\n")
        print("initial load %.1fs" % (time.time() - t0), flush=True)

        n_orders, n_events = a.orders, a.events
        deleted = set()
        status = {}  # order id -> current status for recently touched rows
        for night in range(1, a.nights + 1):
            t0 = time.time()
            day = BASE + dt.timedelta(days=night - 1)
            sql = []
            # New customers (~1%).
            new_c = max(1, n_cust // 100)
            sql.append(copy_block("customers", ["id", "name", "email", "city", "address", "created_at", "last_login"],
                                  [g.customer(n_cust + i, day + dt.timedelta(seconds=86400 * i // new_c))
                                   for i in range(1, new_c + 1)]))
            n_cust += new_c
            # A few customers log in (0.5%): last_login updates, biased to recent customers.
            logins = sorted({max(1, n_cust - int(r.expovariate(1 / (0.2 * n_cust)))) for _ in range(n_cust // 200)})
            sql.append("CREATE TEMP TABLE cu (id bigint, t timestamptz);\n")
            sql.append(copy_block("cu", ["id", "t"], [[str(c), ts(day + dt.timedelta(seconds=r.randint(0, 86399)))]
                                                     for c in logins]))
            sql.append("UPDATE customers c SET last_login = cu.t FROM cu WHERE c.id = cu.id;\n")
            # New orders (~3%).
            new_o = n_orders * 3 // 100
            sql.append(copy_block("orders", ORDER_COLS,
                                  [g.order(n_orders + i, n_cust, day + dt.timedelta(seconds=86400 * i // new_o))
                                   for i in range(1, new_o + 1)]))
            n_orders += new_o
            # Update ~2% of orders, exponential bias toward recent ids (mean distance --update-mean).
            upd = set()
            target = n_orders * 2 // 100
            while len(upd) < target:
                oid = n_orders - int(r.expovariate(1 / (a.update_mean * n_orders)))
                if 1 <= oid and oid not in deleted:
                    upd.add(oid)
            rows = []
            for oid in sorted(upd):
                old = status.get(oid) or ("delivered" if oid <= a.orders * 0.95 else "paid")
                new = "cancelled" if (old in ("pending", "paid") and r.random() < 0.05) else STATUS_FLOW[old]
                status[oid] = new
                t = day + dt.timedelta(seconds=r.randint(0, 86399))
                trk = "TRK%010d" % oid if new in ("shipped", "delivered", "returned", "refunded") else None
                rows.append([str(oid), new, ts(t), trk])
            sql.append("CREATE TEMP TABLE ou (id bigint, status text, t timestamptz, trk text);\n")
            sql.append(copy_block("ou", ["id", "status", "t", "trk"], rows))
            sql.append("UPDATE orders o SET status = ou.status, updated_at = ou.t,"
                       " tracking_code = coalesce(ou.trk, o.tracking_code) FROM ou WHERE o.id = ou.id;\n")
            # Delete ~0.01% (uniform).
            dels = set()
            while len(dels) < max(1, n_orders // 10_000):
                oid = r.randint(1, n_orders)
                if oid not in deleted:
                    dels.add(oid)
            deleted |= dels
            sql.append("DELETE FROM orders WHERE id IN (%s);\n" % ",".join(map(str, sorted(dels))))
            # Events only grow.
            sql.append(copy_block("events", ["id", "customer_id", "kind", "at", "payload"],
                                  [g.event(n_events + i, n_cust,
                                           day + dt.timedelta(seconds=86400 * i // a.events_per_night))
                                   for i in range(1, a.events_per_night + 1)]))
            n_events += a.events_per_night
            pg.run_sql("".join(sql))
            pg.run_sql("VACUUM ANALYZE;\nCHECKPOINT;\n")
            sqlp = os.path.join(a.out, "night-%d.sql" % night)
            dmpp = os.path.join(a.out, "night-%d.dump" % night)
            pg.dump("plain", sqlp)
            pg.dump("custom", dmpp)
            print("night %d: orders=%d updated=%d deleted=%d plain=%d custom=%d (%.1fs)" % (
                night, n_orders, len(upd), len(dels), os.path.getsize(sqlp), os.path.getsize(dmpp),
                time.time() - t0), flush=True)
    finally:
        if not a.keep_db:
            pg.run_sql("DROP DATABASE IF EXISTS %s;\n" % DB, db="postgres")


if __name__ == "__main__":
    main()
