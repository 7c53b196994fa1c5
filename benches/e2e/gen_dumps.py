#!/usr/bin/env python3
"""Generate the "dumps" dataset: successive nightly plain-SQL dumps of an app database.

Usage: gen_dumps.py DEST NIGHTS FIRST_NIGHT_MB [SEED]
Writes DEST/night-1.sql ... DEST/night-NIGHTS.sql.

The dumps mimic `pg_dump --format=plain` output: a schema preamble, one
`COPY public.<table> (...) FROM stdin;` block per table with tab-separated rows
(NULL as \\N) ending in `\\.`, then sequences, constraints and indexes.

The database has a static `products` table, a slowly growing `customers` table and
a large `orders` table (~95% of the bytes).  Between two nights:
  * new rows are inserted (orders +3%, customers +1%),
  * ~2% of the orders (and 1% of the customers) are updated, chosen with an
    exponential bias towards the most recent rows (status changes, updated_at),
  * a few rows are deleted (0.01% of the orders and customers, anywhere).
Rows are dumped in physical (heap) order, as a sequential scan returns them, and the
heap is modelled like PostgreSQL's MVCC: an UPDATE writes a new row version into
free space (slots freed by an earlier vacuum, lowest first) or at the end of the
table, and the old version's slot becomes dead; a vacuum after each night turns dead
slots into free space.  So updated rows move, new rows fill holes in the middle,
and consecutive dumps share long runs of identical bytes at shifting offsets.
Deterministic for a given seed.
"""
import bisect
import os
import random
import sys
import time

DAY = 86400
EPOCH0 = 1_690_000_000  # first row's creation time
FIRST_NIGHT = 1_709_258_400  # 2024-03-01 02:00 UTC


def ts(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + ".%06d+00" % (int(t * 1e6) % 1000000)


class Table:
    def __init__(self, name, columns, rowfn, updfn=None):
        self.name = name
        self.columns = columns
        self.rowfn = rowfn  # rowfn(id, now) -> str (no newline)
        self.updfn = updfn  # updfn(fields, version, now): modifies the split row in place
        self.slots = []  # heap: row id, or -1 for free/dead space
        self.pos = {}  # id -> slot
        self.rows = {}  # id -> text
        self.version = {}
        self.free = []  # free slot numbers (after vacuum), sorted high to low
        self.dead = []
        self.next_id = 1

    def _place(self, rid):
        if self.free:
            s = self.free.pop()  # lowest free slot (the list is sorted high to low)
            self.slots[s] = rid
        else:
            s = len(self.slots)
            self.slots.append(rid)
        self.pos[rid] = s

    def insert(self, now):
        rid = self.next_id
        self.next_id += 1
        self.version[rid] = 0
        self.rows[rid] = self.rowfn(rid, now)
        self._place(rid)
        return len(self.rows[rid]) + 1

    def update(self, rid, now):
        self.dead.append(self.pos[rid])
        self.slots[self.pos[rid]] = -1
        self.version[rid] += 1
        fields = self.rows[rid].split("\t")
        self.updfn(fields, self.version[rid], now)
        self.rows[rid] = "\t".join(fields)
        self._place(rid)

    def delete(self, rid):
        self.dead.append(self.pos.pop(rid))
        self.slots[self.dead[-1]] = -1
        del self.rows[rid]
        del self.version[rid]

    def vacuum(self):
        self.free = sorted(set(self.free) | set(self.dead), reverse=True)
        self.dead = []

    def pick_recent(self, rng, scale):
        """A live row id, exponentially biased towards the newest."""
        while True:
            rid = self.next_id - 1 - int(rng.expovariate(1.0 / scale))
            if rid >= 1 and rid in self.rows:
                return rid

    def pick_uniform(self, rng):
        while True:
            rid = rng.randrange(1, self.next_id)
            if rid in self.rows:
                return rid

    def dump(self, out):
        out.write("--\n-- Data for Name: %s; Type: TABLE DATA; Schema: public; Owner: app\n--\n\n"
                  % self.name)
        out.write("COPY public.%s (%s) FROM stdin;\n" % (self.name, ", ".join(c for c, _ in self.columns)))
        rows = self.rows
        out.write("".join(rows[r] + "\n" for r in self.slots if r >= 0))
        out.write("\\.\n\n\n")


def main():
    dest, nights, first_mb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    rng = random.Random(seed)
    os.makedirs(dest, exist_ok=True)

    first = ["Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas",
             "Karin", "Liam", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sami", "Tara", "Yusuf"]
    last = ["Martin", "Bernard", "Dubois", "Schmidt", "Rossi", "Garcia", "Novak", "Jensen",
            "Kowalski", "Silva", "Nagy", "Horvat", "Murphy", "Smith", "Tanaka", "Olsen"]
    cities = ["Lyon", "Berlin", "Porto", "Gdansk", "Turin", "Leeds", "Ghent", "Brno", "Cork", "Malmo"]
    words = ["please", "deliver", "before", "noon", "gift", "wrap", "fragile", "call", "on",
             "arrival", "leave", "at", "door", "back", "office", "invoice", "required", "the",
             "second", "floor", "ring", "twice", "no", "plastic", "thanks", "express"]
    streets = ["Rue de la Paix", "Hauptstrasse", "Via Roma", "High Street", "Kerkstraat", "Calle Mayor"]
    statuses = ["pending", "paid", "shipped", "delivered", "returned", "cancelled"]

    n_products = 2000

    def product_row(rid, now):
        r = random.Random(rid)
        return "%d\tSKU-%06d\t%s %s\t%d\t%s" % (
            rid, rid * 7919 % 1000000, r.choice(words).capitalize(), r.choice(words),
            r.randint(199, 99999), ts(EPOCH0 - r.randint(0, 400) * DAY))

    def customer_row(rid, now):
        fn, ln = rng.choice(first), rng.choice(last)
        return "%d\t%s.%s%d@example.com\t%s %s\t%s\t%s\t%s\t%s\t%s" % (
            rid, fn.lower(), ln.lower(), rid, fn, ln, rng.choice(cities),
            rng.choice(["free", "basic", "pro"]), ts(now), ts(now),
            "\\N" if rng.random() < 0.3 else ts(now + rng.random() * DAY))

    def customer_upd(f, v, now):
        # a login, sometimes a plan or city change
        if rng.random() < 0.2:
            f[4] = rng.choice(["free", "basic", "pro"])
        if rng.random() < 0.05:
            f[3] = rng.choice(cities)
        f[6] = ts(now)
        f[7] = ts(now)

    def order_row(rid, now):
        note = " ".join(rng.choices(words, k=rng.randint(0, 14))) if rng.random() < 0.7 else "\\N"
        return "%d\t%d\t%d\tpending\t%s\t%d\t%d\t%s\t%s\t%d %s, %05d %s\t%s" % (
            rid, rng.randrange(1, max(2, customers.next_id)), rng.randrange(1, n_products),
            rng.choice(["EUR", "EUR", "EUR", "GBP", "SEK", "PLN"]), rng.randint(1, 9),
            rng.randint(250, 250000), ts(now), ts(now),
            rng.randint(1, 240), rng.choice(streets), rng.randint(1000, 99999),
            rng.choice(cities), note)

    def order_upd(f, v, now):
        # the order moves on: paid, shipped, delivered (or a return / cancellation)
        f[3] = statuses[min(v, 3)] if rng.random() > 0.03 else rng.choice(statuses[4:])
        f[8] = ts(now)

    products = Table("products", [("id", "bigint NOT NULL"), ("sku", "text NOT NULL"),
                                  ("name", "text NOT NULL"), ("price_cents", "integer NOT NULL"),
                                  ("created_at", "timestamp with time zone NOT NULL")], product_row)
    customers = Table("customers", [("id", "bigint NOT NULL"), ("email", "text NOT NULL"),
                                    ("full_name", "text NOT NULL"), ("city", "text"),
                                    ("plan", "text NOT NULL"),
                                    ("created_at", "timestamp with time zone NOT NULL"),
                                    ("updated_at", "timestamp with time zone NOT NULL"),
                                    ("last_login", "timestamp with time zone")], customer_row, customer_upd)
    orders = Table("orders", [("id", "bigint NOT NULL"), ("customer_id", "bigint NOT NULL"),
                              ("product_id", "bigint NOT NULL"), ("status", "text NOT NULL"),
                              ("currency", "character(3) NOT NULL"), ("quantity", "integer NOT NULL"),
                              ("total_cents", "bigint NOT NULL"),
                              ("created_at", "timestamp with time zone NOT NULL"),
                              ("updated_at", "timestamp with time zone NOT NULL"),
                              ("shipping_address", "text NOT NULL"), ("note", "text")], order_row, order_upd)
    tables = [customers, orders, products]

    # Initial load, sized so that the first dump is ~first_mb MB: products (static,
    # ~150 kB), then customers and orders created over the past months, 1 to 20.
    target = first_mb * 1e6
    size = sum(products.insert(EPOCH0 - 86400 * 200) for _ in range(n_products))
    t = float(EPOCH0)
    while size < target:
        if rng.random() < 0.06:
            size += customers.insert(t)
        size += orders.insert(t)
        t += 13.7

    for night in range(1, nights + 1):
        now = FIRST_NIGHT + (night - 1) * DAY
        if night > 1:
            live_o = len(orders.rows)
            live_c = len(customers.rows)
            ops = ([("io", None)] * int(live_o * 0.03) + [("uo", None)] * int(live_o * 0.02)
                   + [("do", None)] * max(1, int(live_o * 0.0001))
                   + [("ic", None)] * int(live_c * 0.01) + [("uc", None)] * int(live_c * 0.01)
                   + [("dc", None)] * max(1, int(live_c * 0.0001)))
            rng.shuffle(ops)  # interleave the day's activity
            for op, _ in ops:
                t = now - DAY + rng.random() * DAY
                if op == "io":
                    orders.insert(t)
                elif op == "uo":
                    orders.update(orders.pick_recent(rng, live_o * 0.05), t)
                elif op == "do":
                    orders.delete(orders.pick_uniform(rng))
                elif op == "ic":
                    customers.insert(t)
                elif op == "uc":
                    customers.update(customers.pick_recent(rng, live_c * 0.1), t)
                else:
                    customers.delete(customers.pick_uniform(rng))
            for tb in tables:
                tb.vacuum()  # nightly autovacuum, before the dump
        path = os.path.join(dest, "night-%d.sql" % night)
        with open(path + ".tmp", "w", buffering=1 << 20) as out:
            write_dump(out, tables, now)
        os.replace(path + ".tmp", path)
        sys.stderr.write("dumps: %s %.1f MB (orders %d rows, %d slots)\n" % (
            path, os.path.getsize(path) / 1e6, len(orders.rows), len(orders.slots)))


def write_dump(out, tables, now):
    out.write("--\n-- PostgreSQL database dump\n--\n\n"
              "-- Dumped from database version 15.6 (Debian 15.6-0+deb12u1)\n"
              "-- Dumped by pg_dump version 15.6 (Debian 15.6-0+deb12u1)\n\n"
              "-- Started on %s UTC\n\n" % time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)))
    out.write("SET statement_timeout = 0;\nSET lock_timeout = 0;\n"
              "SET idle_in_transaction_session_timeout = 0;\nSET client_encoding = 'UTF8';\n"
              "SET standard_conforming_strings = on;\n"
              "SELECT pg_catalog.set_config('search_path', '', false);\n"
              "SET check_function_bodies = false;\nSET xmloption = content;\n"
              "SET client_min_messages = warning;\nSET row_security = off;\n\n"
              "SET default_tablespace = '';\n\nSET default_table_access_method = heap;\n\n")
    for tb in tables:
        out.write("--\n-- Name: %s; Type: TABLE; Schema: public; Owner: app\n--\n\n" % tb.name)
        out.write("CREATE TABLE public.%s (\n%s\n);\n\n\nALTER TABLE public.%s OWNER TO app;\n\n"
                  % (tb.name, ",\n".join("    %s %s" % c for c in tb.columns), tb.name))
        out.write("CREATE SEQUENCE public.%s_id_seq\n    START WITH 1\n    INCREMENT BY 1\n"
                  "    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1;\n\n\n"
                  "ALTER TABLE public.%s_id_seq OWNER TO app;\n\n"
                  "ALTER SEQUENCE public.%s_id_seq OWNED BY public.%s.id;\n\n\n"
                  % (tb.name, tb.name, tb.name, tb.name))
    for tb in tables:
        tb.dump(out)
    for tb in tables:
        out.write("SELECT pg_catalog.setval('public.%s_id_seq', %d, true);\n\n\n"
                  % (tb.name, tb.next_id - 1))
    for tb in tables:
        out.write("ALTER TABLE ONLY public.%s\n    ADD CONSTRAINT %s_pkey PRIMARY KEY (id);\n\n\n"
                  % (tb.name, tb.name))
    out.write("CREATE INDEX orders_customer_id_idx ON public.orders USING btree (customer_id);\n\n\n"
              "CREATE INDEX orders_created_at_idx ON public.orders USING btree (created_at);\n\n\n"
              "-- Completed on %s UTC\n\n--\n-- PostgreSQL database dump complete\n--\n\n"
              % time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 1234)))


if __name__ == "__main__":
    main()
