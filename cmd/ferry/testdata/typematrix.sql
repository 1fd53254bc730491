-- Type matrix for TestTypeMatrix: every built-in PostgreSQL type (manual
-- chapter 8), contrib hstore/citext/ltree, a generated column, TOASTed text
-- and key shapes that stress injective key templates. Loaded into a fresh
-- database; each row id < 100 holds values that must arrive exactly, rows
-- with a value a target may refuse are alone in their row (see the test).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS ltree;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très bien');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE TYPE addr AS (street text, no integer, tags text[]);

-- Numbers.
CREATE TABLE nums (
  id integer PRIMARY KEY,
  i2 smallint, i4 integer, i8 bigint,
  n numeric, n38 numeric, nbig numeric, nfix numeric(10, 4),
  f4 real, f8 double precision,
  m money, o oid, d posint
);
INSERT INTO nums VALUES
  (1, 32767, 2147483647, 9223372036854775807, 12345.6789,
   '12345678901234567890123456789012345678', -- 38 digits: N
   '1234567890123456789012345678901234567890.123456789', -- 49 digits: S
   123456.0001, 3.4028235e38, 0.30000000000000004, NULL, 4294967295, 7),
  (2, -32768, -2147483648, -9223372036854775808, -0.000000000000000000000000000001,
   '-0.00000000000000000000000000000000000000000000001', -- tiny, 1 digit
   '-98765432109876543210987654321098765432109876543210', '-0.0001',
   -1.17549435e-38, -1.5e-130, NULL, 0, 1),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 0, 0, 0, 0, '1e-131', '1e200', 0, 0.1, 1e125, NULL, 1, 2147483647),
  -- numeric -0 is 0
  (6, 1, 1, 1, '-0', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  -- exact or refused: float -0 (DynamoDB's N has no negative zero)
  (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0', NULL, NULL, NULL, NULL),
  (207, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0', NULL, NULL, NULL),
  -- refused by both targets: NaN and ±Infinity
  (101, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (102, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL),
  (103, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'Infinity', NULL, NULL, NULL),
  (104, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL),
  (105, NULL, NULL, NULL, NULL, NULL, 'Infinity', NULL, NULL, NULL, NULL, NULL, NULL),
  -- exact or refused: outside DynamoDB's N range as a float, money
  (201, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 4.9e-324, NULL, NULL, NULL),     -- subnormal
  (202, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1.7976931348623157e308, NULL, NULL, NULL),
  (203, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1.4e-45, NULL, NULL, NULL, NULL),     -- float4 subnormal
  (204, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-92233720368547758.08', NULL, NULL),
  (205, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '$1,234,567.89', NULL, NULL),
  (206, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -2.2250738585072014e-308, NULL, NULL, NULL); -- below 1E-130

-- Character types, boolean, enum, domains, uuid.
CREATE TABLE texts (
  id integer PRIMARY KEY,
  c5 char(5), vc varchar(10), t text, ch "char", nm name, ci citext,
  b boolean, e mood, em email, u uuid
);
INSERT INTO texts VALUES
  (1, 'ab', 'ü€😀', E'line1\nline2\ttab "quoted" back\\slash', 'x', 'pg_class', 'MiXeD',
   true, 'très bien', 'a@b.c', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
  (2, '', '', '', ' ', '', '', false, 'sad', '@', '00000000-0000-0000-0000-000000000000'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, '  x  ', 'trail ', ' lead', '"', repeat('n', 63), 'ÄÖÜ', true, 'ok', 'x@y', 'ffffffff-ffff-ffff-ffff-ffffffffffff'),
  (5, NULL, NULL, E'<tag> & \u0001 \\x00 NULL', NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- Binary.
CREATE TABLE bin (id integer PRIMARY KEY, b bytea);
INSERT INTO bin VALUES (1, '\x00ff7f80'), (2, '\x'), (3, NULL), (4, decode(repeat('00010203fefdfcfb', 512), 'hex')),
  (5, convert_to('héllo', 'UTF8'));

-- Date and time.
CREATE TABLE times (
  id integer PRIMARY KEY,
  d date, t time, tz timetz, ts timestamp, tstz timestamptz, iv interval,
  ts0 timestamp(0), t3 time(3)
);
INSERT INTO times VALUES
  (1, '2024-02-29', '23:59:59.999999', '12:34:56.789+05:30', '2024-02-29 12:34:56.123456',
   '2024-02-29 12:34:56.123456+02', '1 year 2 mons 3 days 04:05:06.789', '2000-01-01 00:00:00.6', '01:02:03.456'),
  (2, '1970-01-01', '24:00:00', '24:00:00-15:59', '1970-01-01 00:00:00', '1969-12-31 23:59:59.999999+00',
   '-1 days +02:00:00', '1999-12-31 23:59:59', '00:00:00'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  -- BC dates: exact
  (4, '0044-03-15 BC', '00:00:00', '00:00:00+00', '0044-03-15 12:00:00 BC', '4713-01-01 00:00:00+00 BC',
   '-178000000 years', '0001-01-01 00:00:00 BC', '12:00:00'),
  (5, '0001-01-01', '12:00:00', '12:00:00+14', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00',
   '999999 days 23:59:59.999999', NULL, NULL),
  -- refused by both targets: ±infinity
  (101, 'infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (102, NULL, NULL, NULL, '-infinity', NULL, NULL, NULL, NULL),
  (103, NULL, NULL, NULL, NULL, 'infinity', NULL, NULL, NULL),
  -- exact or refused: years beyond 9999
  (201, '10000-01-01', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (202, NULL, NULL, NULL, '12345-06-07 08:09:10.5', NULL, NULL, NULL, NULL),
  (203, NULL, NULL, NULL, NULL, '294276-12-31 23:59:59.999999+00', NULL, NULL, NULL);

-- Network, bit strings, text search, XML, JSON, pg_lsn, oid aliases, contrib.
CREATE TABLE misc (
  id integer PRIMARY KEY,
  ip inet, net cidr, mac macaddr, mac8 macaddr8,
  bits bit(8), vbits varbit,
  tsv tsvector, tsq tsquery,
  x xml, j json, jb jsonb,
  lsn pg_lsn, rc regclass, rt regtype,
  hs hstore, lt ltree
);
INSERT INTO misc VALUES
  (1, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
   B'10101010', B'1', 'a fat:1A cat:2B sat', 'fat & (rat | !cat)',
   '<a b="1">x &amp; y<!-- c --></a>', '{"a": 1, "a": 2, "b" : [1, 2.50, "x"]}',
   '{"x": [1, {"y": null}], "big": 123456789012345678901234567890.5, "u": "é\u0001x"}',
   '16/B374D848', 'pg_class', 'integer', 'a=>1, "b c"=>NULL, "\"q\""=>"x\\y"', 'Top.Science.Astronomy'),
  (2, '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00',
   B'00000000', B'', '', '!x', 'plain text', 'null', 'null',
   '0/0', '-', '-', '', ''),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '"just a string"', '[1e400, -0.0, 1E-7]',
   NULL, NULL, NULL, NULL, NULL),
  (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '12345678901234567890123456789012345678901234567890',
   '{"n": 12345678901234567890123456789012345678901234567890, "nested": {"a": {"b": {"c": [[], {}]}}}}',
   NULL, NULL, NULL, NULL, NULL);
-- the replica identity full table in pg_class has a stable oid; regclass of a user table prints its name
UPDATE misc SET rc = 'misc' WHERE id = 2;

-- Geometric types, ranges, multiranges, a composite.
CREATE TABLE shapes (
  id integer PRIMARY KEY,
  pt point, ln line, ls lseg, bx box, pa path, pg polygon, ci circle,
  r4 int4range, r8 int8range, nr numrange, tsr tsrange, tzr tstzrange, dr daterange,
  mr int4multirange, dmr datemultirange,
  ad addr
);
INSERT INTO shapes VALUES
  (1, '(1.5,-2)', '{1,-1,0}', '[(0,0),(1,1)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(1,0))', '<(0,0),2.5>',
   '[1,10)', '(,5]', '[1.5,2.25]', '["2024-01-01 00:00","2024-12-31 23:59:59.5")', '[2024-01-01 00:00+00,infinity)', '[2024-01-01,)',
   '{[1,3),[5,7)}', '{[2024-01-01,2024-02-01),[2024-03-01,)}',
   ROW('Main St. #1', 42, ARRAY['a', 'b c', NULL])),
  (2, '(0,0)', '{0,1,0}', '[(0,0),(0,0)]', '(0,0),(0,0)', '((0,0),(1,1))', '((0,0))', '<(1,1),0>',
   'empty', 'empty', 'empty', 'empty', 'empty', 'empty', '{}', '{}', ROW(NULL, NULL, NULL)),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   ROW(E'quote " back \\ comma , paren ()', -1, '{}'));

-- Arrays.
CREATE TABLE arrays (
  id integer PRIMARY KEY,
  ia integer[], ia2 integer[][], ta text[], na numeric[], fa double precision[],
  ba boolean[], bya bytea[], tsa timestamptz[], da date[], ea mood[], ja jsonb[], ua uuid[]
);
INSERT INTO arrays VALUES
  (1, '{1,2,3}', '{{1,2},{3,4}}',
   ARRAY['a', '', 'NULL', NULL, 'with "quote"', E'back\\slash', 'comma,brace}', '  spaced  ', 'ü{}'],
   '{1.5,12345678901234567890123456789012345678901234567890,-0.001,NULL}', '{0.1,-2.5e-10,1e100}',
   '{t,f,NULL}', ARRAY['\x00ff'::bytea, '\x'::bytea, NULL],
   '{"2024-02-29 12:34:56.5+00","1999-12-31 23:59:59+05"}', '{2024-01-01,"0044-03-15 BC"}',
   '{sad,"très bien"}', ARRAY['{"a":1}'::jsonb, 'null'::jsonb, NULL], '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'),
  (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, '{NULL}', '{{{1},{2}},{{3},{4}}}', '{""}', '{0}', '{0.5}', '{f}', NULL, NULL, NULL, NULL, NULL, NULL),
  (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  -- refused: a NaN element
  (101, NULL, NULL, NULL, '{1,NaN}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  -- exact or refused: non-default lower bounds
  (201, '[5:6]={50,60}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (202, NULL, '[0:1][1:2]={{1,2},{3,4}}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  -- exact or refused: a float -0 element
  (203, NULL, NULL, NULL, NULL, '{1,-0}', NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- A generated column.
CREATE TABLE gen (
  id integer PRIMARY KEY,
  a integer NOT NULL, b integer,
  prod integer GENERATED ALWAYS AS (a * b) STORED,
  label text GENERATED ALWAYS AS ('a=' || a || ',b=' || coalesce(b::text, '?')) STORED
);
INSERT INTO gen (id, a, b) VALUES (1, 2, 3), (2, 5, NULL), (3, -4, 4);

-- TOASTed text: ~100 KB values (incompressible: hex of md5) that fit an
-- item, one with REPLICA IDENTITY FULL and one with the default.
CREATE TABLE toast_full (id integer PRIMARY KEY, note text, big text);
ALTER TABLE toast_full REPLICA IDENTITY FULL;
CREATE TABLE toast_def (id integer PRIMARY KEY, note text, big text);
INSERT INTO toast_full SELECT g, 'row ' || g, (SELECT string_agg(md5(g || ':' || i), '') FROM generate_series(1, 3200) i) FROM generate_series(1, 3) g;
INSERT INTO toast_def SELECT g, 'row ' || g, (SELECT string_agg(md5(g || '/' || i), '') FROM generate_series(1, 3200) i) FROM generate_series(1, 3) g;
-- 1 MB: over DynamoDB's 400 KB item limit (the item is refused), under
-- Kinesis's 1 MiB record limit (the record is published).
INSERT INTO toast_def SELECT 101, 'one megabyte', (SELECT string_agg(md5('mb' || i), '') FROM generate_series(1, 31250) i);

-- Key shapes: a three-column key whose sort key template joins two text
-- columns; values with '#', '\', unicode, trailing spaces, empty strings.
CREATE TABLE keys3 (a integer, b text, c text, v text, PRIMARY KEY (a, b, c));
INSERT INTO keys3 VALUES
  (1, 'x#y', 'z', 'x#y|z'), (1, 'x', 'y#z', 'x|y#z'),
  (1, E'a\\', '#', E'a\\|#'), (1, E'a#\\', '', E'a#\\|'),
  (1, E'x\\#y', 'z', E'x\\#y|z'), (1, 'x', E'\\#y#z', E'x|\\#y#z'),
  (2, '', '', 'empty|empty'), (2, ' ', '', 'space|empty'), (2, '', ' ', 'empty|space'),
  (2, 'k ', 'v', 'trailing'), (2, 'k', ' v', 'leading'),
  (3, 'ü', '🦀', 'unicode'), (3, 'u', '\u00fc', 'not unicode');
CREATE TABLE tkey (k text PRIMARY KEY, v integer);
INSERT INTO tkey VALUES ('x', 1), ('x ', 2), (' x', 3), ('ü', 4), (E'a\\b', 5), ('a#b', 6), ('🦀#', 7), ('#', 8), (E'\\', 9),
  ('', 101); -- refused: an empty partition key
CREATE TABLE ckey (k char(3) PRIMARY KEY, v integer);
INSERT INTO ckey VALUES ('a', 1), ('a b', 2), (' a', 3);

-- Columns named like the generated mapping's key attributes, and a table
-- name that is not a valid DynamoDB table name as it is.
CREATE TABLE clash (id integer PRIMARY KEY, pk text, sk integer);
INSERT INTO clash VALUES (1, 'pk value', 10), (2, NULL, NULL);
CREATE TABLE "Odd name ü" (id integer PRIMARY KEY, "Col ü" text);
INSERT INTO "Odd name ü" VALUES (1, 'odd');
