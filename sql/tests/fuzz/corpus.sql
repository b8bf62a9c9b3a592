-- Statements that once did harm, or are built to. Separated by a line holding ";;".
-- Each must come back as rows or as a refusal (tests/fuzz.rs).
SELECT length(repeat('x', 2000000000))
;;
SELECT repeat('x', 2000000000)
;;
SELECT lpad('', 2147483647, 'ab')
;;
SELECT cardinality(generate_series(TIMESTAMP '1970-01-01', TIMESTAMP '2200-01-01', INTERVAL '1 millisecond'))
;;
WITH a AS (SELECT repeat('x', 100000000) AS s), b AS (SELECT s || s AS s FROM a), c AS (SELECT s || s AS s FROM b) SELECT length(s) FROM c
;;
WITH a AS (SELECT repeat('x', 100000000) AS s) SELECT length(concat(s, s, s, s)) FROM a
;;
SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100) b
;;
SELECT string_agg(repeat('y', 1000000), ',') FROM generate_series(1, 100)
;;
SELECT array_agg(x) FROM generate_series(1, 2000000) AS t(x)
;;
SELECT * FROM events e1 JOIN events e2 ON true JOIN events e3 ON true LIMIT 5
;;
SELECT regexp_replace(repeat('a', 10000), '', repeat('b', 100000), 'g')
;;
SELECT regexp_like(path, '(a+)+$') FROM events
;;
SELECT regexp_like(path, repeat('(', 10000)) FROM events
;;
SELECT regexp_like(path, '(((((((((((((((((((((((a{1000}){1000}){1000}){1000})))))))))))))))))))') FROM events
;;
SELECT to_char(added_iso, repeat('%Y', 100000)) FROM events
;;
SELECT CAST('99999999999999999999999999999' AS BIGINT)
;;
SELECT 9223372036854775807 + 1
;;
SELECT -9223372036854775808 / -1
;;
SELECT array_repeat(array_repeat(1, 10000), 10000)
;;
SELECT funnel_steps(added_iso, 3600, path = '/p1', path = '/p2') FROM events
;;
EXPLAIN ANALYZE SELECT count(*) FROM pageviews
;;
-- Found by tests/fuzz.rs: a function given arguments no signature takes was an internal error (500).
SELECT CASE WHEN trim(0) THEN 0 ELSE 0 END
;;
SELECT btrim(1)
;;
-- Found by tests/fuzz.rs: DataFusion 55's lpad panicked on a NULL fill.
SELECT lower(lpad(('' || ''), (0 + -1), NULL)) AS x
;;
SELECT lpad(path, -1, NULL), rpad(path, 2, NULL) FROM events
