package workload

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Description sizes: at least descMinBytes (10 KiB), up to descSpreadBytes more.
const (
	descMinBytes    = 10 << 10
	descSpreadBytes = 2 << 10
	maxFollowUps    = 16
)

const directorsCut = " (DIRECTOR'S CUT)"

// opFilmEdit changes one to six columns of a random film: rental rate,
// rental duration, length, rating (an enum), special features (text[],
// sometimes empty or NULL) and the title.
func opFilmEdit(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	film, mask := w.in(w.b.film), 1+w.rng.IntN(63)
	rate := pick(w.rng, []string{"0.99", "2.99", "4.99"})
	duration, length := int16(3+w.rng.IntN(5)), int16(46+w.rng.IntN(140))
	rating := pick(w.rng, ratings)
	features := randomFeatures(w.rng.IntN(16), w.rng.IntN(10) == 0)

	var set []string
	args := []any{film}
	add := func(bit int, expr string, arg any) {
		if mask&(1<<bit) == 0 {
			return
		}
		if arg != nil {
			args = append(args, arg)
			expr = fmt.Sprintf(expr, len(args))
		}
		set = append(set, expr)
	}
	add(0, "rental_rate = $%d::numeric", rate)
	add(1, "rental_duration = $%d", duration)
	add(2, "length = $%d", length)
	add(3, "rating = $%d::text::public.mpaa_rating", rating)
	add(4, "special_features = $%d::text[]", features)
	add(5, "title = CASE WHEN right(title, 17) = '"+strings.ReplaceAll(directorsCut, "'", "''")+
		"' THEN left(title, -17) ELSE title || '"+strings.ReplaceAll(directorsCut, "'", "''")+"' END", nil)
	sql := "UPDATE public.film SET " + strings.Join(set, ", ") + " WHERE film_id = " + pickSQL("film", "film_id", 1)
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, wrap("update film", err)
	}
	return tag.RowsAffected(), nil
}

// randomFeatures is the subset of specialFeatures the bits of mask select, in
// their usual order; nil (SQL NULL) when null.
func randomFeatures(mask int, null bool) []string {
	if null {
		return nil
	}
	out := []string{}
	for i, f := range specialFeatures {
		if mask&(1<<i) != 0 {
			out = append(out, f)
		}
	}
	return out
}

var longDescriptionSQL = `UPDATE public.film SET description = $2 WHERE film_id = ` + pickSQL("film", "film_id", 1) +
	` RETURNING film_id`

// opLongDescription gives a random film a ~10 KB description, which
// PostgreSQL stores out of line (TOAST). Half the time the worker later
// updates another column of the same film (opToastFollowUp), so logical
// decoding sees the description as an unchanged TOAST value.
func opLongDescription(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	film := w.in(w.b.film)
	text := longDescription(w.rng, descMinBytes+w.rng.IntN(descSpreadBytes))
	followUp := w.rng.IntN(2) == 0
	var id int32
	if err := tx.QueryRow(ctx, longDescriptionSQL, film, text).Scan(&id); err != nil {
		return 0, wrap("update film description", err)
	}
	if followUp && len(w.followUps) < maxFollowUps {
		w.afterCommit = func() { w.followUps = append(w.followUps, id) }
	}
	return 1, nil
}

// opToastFollowUp updates rental_duration (and, by trigger, last_update and
// fulltext) of a film whose description opLongDescription made long, leaving
// the description itself untouched.
func opToastFollowUp(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	if len(w.followUps) == 0 {
		return 0, nil
	}
	film := w.followUps[0]
	w.afterCommit = func() { w.followUps = w.followUps[1:] }
	tag, err := tx.Exec(ctx, `UPDATE public.film
		SET rental_duration = CASE WHEN rental_duration >= 7 THEN 3 ELSE rental_duration + 1 END
		WHERE film_id = $1`, film)
	if err != nil {
		return 0, wrap("update film after long description", err)
	}
	return tag.RowsAffected(), nil
}

const pickFilmActorSQL = `(SELECT actor_id, film_id FROM public.film_actor WHERE film_id >= $1 ORDER BY film_id LIMIT 1)
  UNION ALL (SELECT actor_id, film_id FROM public.film_actor ORDER BY film_id LIMIT 1) LIMIT 1`

var deleteFilmActorSQL = `DELETE FROM public.film_actor fa USING (` + pickFilmActorSQL + `) d
WHERE fa.actor_id = d.actor_id AND fa.film_id = d.film_id RETURNING fa.actor_id, fa.film_id`

// newFilmActorSQL casts another actor ($1: where to start looking) in film $2,
// not the one just removed ($3) and not one already in it.
const newFilmActorSQL = `INSERT INTO public.film_actor (actor_id, film_id)
SELECT actor_id, $2 FROM (
  (SELECT a.actor_id FROM public.actor a WHERE a.actor_id >= $1 AND a.actor_id <> $3
     AND NOT EXISTS (SELECT 1 FROM public.film_actor x WHERE x.film_id = $2 AND x.actor_id = a.actor_id)
   ORDER BY a.actor_id LIMIT 1)
  UNION ALL
  (SELECT a.actor_id FROM public.actor a WHERE a.actor_id <> $3
     AND NOT EXISTS (SELECT 1 FROM public.film_actor x WHERE x.film_id = $2 AND x.actor_id = a.actor_id)
   ORDER BY a.actor_id LIMIT 1) LIMIT 1) pick
ON CONFLICT DO NOTHING`

// opDeleteFilmActor recasts a film: deletes one film_actor row (a composite
// key) and inserts another actor for the same film.
func opDeleteFilmActor(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	film, actor := w.in(w.b.film), w.in(w.b.actor)
	var oldActor, filmID int32
	err := tx.QueryRow(ctx, deleteFilmActorSQL, film).Scan(&oldActor, &filmID)
	if errors.Is(err, pgx.ErrNoRows) { // no film_actor rows left, or the one picked was just deleted
		return 0, nil
	}
	if err != nil {
		return 0, wrap("delete film_actor", err)
	}
	tag, err := tx.Exec(ctx, newFilmActorSQL, actor, filmID, oldActor)
	if err != nil {
		return 1, wrap("insert film_actor", err)
	}
	return 1 + tag.RowsAffected(), nil
}
