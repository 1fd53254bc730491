package workload

// scaleSQL inserts copies $1 (an int[] of copy numbers k ≥ 1) of one table's
// reference rows. Every value of copy k is a function of the reference row and
// k only (arithmetic, md5 of both, or the table's own sorted vocabulary), so
// the result does not depend on the order, the grouping or the parallelism
// of the inserts. Foreign keys point into the same copy (customer k → address
// k, rental k → inventory k and customer k, …) or at the shared reference
// tables (city, store, staff, language, category).
var scaleSQL = map[string]string{
	// House numbers, postal codes and phone numbers recomputed; address2 NULL
	// for one address in five, an apartment for one in seven.
	"address": `INSERT INTO public.address (address_id, address, address2, district, city_id, postal_code, phone, last_update)
SELECT a.address_id + k * 10000,
  ((a.address_id * 37 + k * 101) % 1999 + 1)::text || ' ' ||
    CASE WHEN strpos(a.address, ' ') > 0 THEN substr(a.address, strpos(a.address, ' ') + 1) ELSE a.address END,
  CASE WHEN (a.address_id + k) % 5 = 0 THEN NULL
       WHEN (a.address_id + k) % 7 = 0 THEN 'Apt ' || ((a.address_id * 13 + k) % 300 + 1)
       ELSE a.address2 END,
  a.district, a.city_id,
  CASE WHEN coalesce(a.postal_code, '') = '' THEN a.postal_code
       ELSE lpad(((a.address_id * 7919 + k * 104729) % 100000)::text, 5, '0') END,
  CASE WHEN a.phone = '' THEN a.phone
       ELSE ((a.address_id::bigint * 982451653 + k::bigint * 35712569) % 900000000000 + 100000000000)::text END,
  a.last_update
FROM unnest($1::int[]) k CROSS JOIN public.address a
WHERE a.address_id < 10000`,

	// Names recombined from the reference customers' names; no email for one
	// customer in twenty, active NULL for one in fifty.
	"customer": `INSERT INTO public.customer (customer_id, store_id, first_name, last_name, email, address_id, activebool, create_date, last_update, active)
SELECT c.customer_id + k * 10000, c.store_id, nm.first, nm.last,
  CASE WHEN (c.customer_id + k) % 20 = 0 THEN NULL ELSE nm.first || '.' || nm.last || k || '@sakilacustomer.org' END,
  c.address_id + k * 10000, c.activebool, c.create_date, c.last_update,
  CASE WHEN (c.customer_id * 3 + k) % 50 = 0 THEN NULL ELSE c.active END
FROM unnest($1::int[]) k CROSS JOIN public.customer c
CROSS JOIN (SELECT array_agg(DISTINCT first_name ORDER BY first_name) f, array_agg(DISTINCT last_name ORDER BY last_name) l
            FROM public.customer WHERE customer_id < 10000) n
CROSS JOIN LATERAL (SELECT n.f[1 + (c.customer_id * 7 + k * 13) % cardinality(n.f)] AS first,
                           n.l[1 + (c.customer_id * 11 + k * 17) % cardinality(n.l)] AS last) nm
WHERE c.customer_id < 10000`,

	"actor": `INSERT INTO public.actor (actor_id, first_name, last_name, last_update)
SELECT a.actor_id + k * 1000,
  n.f[1 + (a.actor_id * 7 + k * 13) % cardinality(n.f)], n.l[1 + (a.actor_id * 11 + k * 17) % cardinality(n.l)],
  a.last_update
FROM unnest($1::int[]) k CROSS JOIN public.actor a
CROSS JOIN (SELECT array_agg(DISTINCT first_name ORDER BY first_name) f, array_agg(DISTINCT last_name ORDER BY last_name) l
            FROM public.actor WHERE actor_id < 1000) n
WHERE a.actor_id < 1000`,

	// Titles numbered (ACADEMY DINOSAUR II, III, …); one description in
	// twenty is 3–7 KB of Pagila-style sentences with reel codes, one in fifty
	// NULL; languages, length and special_features vary, sometimes NULL. The
	// fulltext column is filled by Pagila's own trigger.
	"film": `INSERT INTO public.film (film_id, title, description, release_year, language_id, original_language_id,
  rental_duration, rental_rate, length, replacement_cost, rating, last_update, special_features)
SELECT f.film_id + k * 10000,
  f.title || ' ' || CASE WHEN k < 3999 THEN to_char(k + 1, 'FMRN') ELSE (k + 1)::text END,
  CASE WHEN (f.film_id + k) % 50 = 0 THEN NULL
       WHEN (f.film_id + k) % 20 = 0 THEN
         (SELECT string_agg(coalesce(f.description, f.title) || ' (reel ' || upper(substr(md5(f.film_id || '/' || k || '/' || g), 1, 10)) || ').', ' ')
          FROM generate_series(1, 30 + (f.film_id + k) % 40) g)
       ELSE f.description END,
  f.release_year,
  CASE WHEN (f.film_id + k) % 10 = 0 THEN lang.ids[1 + (f.film_id + k) % cardinality(lang.ids)] ELSE f.language_id END,
  CASE WHEN (f.film_id * 3 + k) % 7 = 0 THEN lang.ids[1 + (f.film_id * 5 + k) % cardinality(lang.ids)] ELSE f.original_language_id END,
  f.rental_duration, f.rental_rate,
  CASE WHEN (f.film_id + k) % 40 = 0 THEN NULL ELSE f.length END,
  f.replacement_cost, f.rating, f.last_update,
  CASE WHEN (f.film_id + k) % 9 = 0 THEN NULL ELSE f.special_features END
FROM unnest($1::int[]) k CROSS JOIN public.film f
CROSS JOIN (SELECT array_agg(language_id ORDER BY language_id) ids FROM public.language) lang
WHERE f.film_id < 10000`,

	"film_actor": `INSERT INTO public.film_actor (actor_id, film_id, last_update)
SELECT fa.actor_id + k * 1000, fa.film_id + k * 10000, fa.last_update
FROM unnest($1::int[]) k CROSS JOIN public.film_actor fa
WHERE fa.film_id < 10000 AND fa.actor_id < 1000`,

	// The category turns by k through the (shared) categories.
	"film_category": `INSERT INTO public.film_category (film_id, category_id, last_update)
SELECT fc.film_id + k * 10000,
  cat.ids[1 + (array_position(cat.ids, fc.category_id) - 1 + k) % cardinality(cat.ids)], fc.last_update
FROM unnest($1::int[]) k CROSS JOIN public.film_category fc
CROSS JOIN (SELECT array_agg(category_id ORDER BY category_id) ids FROM public.category) cat
WHERE fc.film_id < 10000`,

	"inventory": `INSERT INTO public.inventory (inventory_id, film_id, store_id, last_update)
SELECT i.inventory_id + k * 100000, i.film_id + k * 10000, i.store_id, i.last_update
FROM unnest($1::int[]) k CROSS JOIN public.inventory i
WHERE i.inventory_id < 100000`,

	// Dates move by up to ten minutes per copy (payments stay in their
	// month's partition but for the last minutes of a month); open rentals
	// (return_date NULL) stay open.
	"rental": `INSERT INTO public.rental (rental_id, rental_date, inventory_id, customer_id, return_date, staff_id, last_update)
SELECT r.rental_id + k * 100000,
  r.rental_date + make_interval(secs => (k * 37) % 600),
  r.inventory_id + k * 100000, r.customer_id + k * 10000,
  r.return_date + make_interval(secs => (k * 37) % 600 + (r.rental_id + k) % 3600),
  r.staff_id, r.last_update
FROM unnest($1::int[]) k CROSS JOIN public.rental r
WHERE r.rental_id < 100000`,

	"payment": `INSERT INTO public.payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date)
SELECT p.payment_id + k * 100000, p.customer_id + k * 10000, p.staff_id, p.rental_id + k * 100000,
  CASE WHEN (p.payment_id + k) % 11 = 0 THEN p.amount + 1.00
       WHEN (p.payment_id + k) % 13 = 0 AND p.amount >= 1 THEN p.amount - 1.00
       ELSE p.amount END,
  p.payment_date + make_interval(secs => (k * 37) % 600)
FROM unnest($1::int[]) k CROSS JOIN public.payment p
WHERE p.payment_id < 100000`,
}
