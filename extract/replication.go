package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ErrSlotMissing means the replication slot does not exist (dropped, or never
// created); ErrSlotInvalidated that PostgreSQL invalidated it (max_slot_wal_keep_size).
var (
	ErrSlotMissing     = errors.New("replication slot does not exist")
	ErrSlotInvalidated = errors.New("replication slot has been invalidated")
	// ErrSlotInUse means another process streams from the slot.
	ErrSlotInUse = errors.New("replication slot is in use by another process")
	// ErrDecode marks a replication message that could not be decoded:
	// reading it again would fail the same way.
	ErrDecode = errors.New("undecodable replication message")
	// ErrConnLost marks a replication connection that failed while
	// streaming (the server went away, the network failed): the stream
	// cannot go on, and reconnecting from the checkpoint may cure it.
	ErrConnLost = errors.New("replication connection lost")
)

// StreamConfig configures a replication stream.
type StreamConfig struct {
	URL         string
	Slot        string
	Publication string
	Tables      map[string]*Table
	// StatusInterval is how often the position is reported to the server even
	// when nothing changed (default 10 s; keep it below wal_sender_timeout).
	StatusInterval time.Duration
}

// ReplicationStream reads pgoutput from a slot. Next must be called from one
// goroutine; Ack may be called from any goroutine.
type ReplicationStream struct {
	cfg        StreamConfig
	conn       *pgconn.PgConn
	dec        *Decoder
	acked      atomic.Uint64 // highest LSN the caller made durable
	sent       LSN           // last position reported to the server
	lastStatus time.Time
	pending    []Event
}

// StartReplication connects and starts streaming the slot from start (0: from
// the slot's confirmed position). Logical decoding messages are requested so
// heartbeats written with pg_logical_emit_message are seen.
func StartReplication(ctx context.Context, cfg StreamConfig, start LSN) (*ReplicationStream, error) {
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	conn, err := ConnectReplication(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	err = pglogrepl.StartReplication(ctx, conn, QuoteIdent(cfg.Slot), pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names " + quoteLiteral(cfg.Publication),
			"messages 'true'",
		},
	})
	if err != nil {
		conn.Close(context.Background())
		return nil, classifySlotError(cfg.Slot, err)
	}
	s := &ReplicationStream{cfg: cfg, conn: conn, dec: NewDecoder(cfg.Tables), lastStatus: time.Now()}
	s.acked.Store(uint64(start))
	s.sent = start
	return s, nil
}

func classifySlotError(slot string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "42704" || strings.Contains(pgErr.Message, "does not exist"):
			return fmt.Errorf("start replication on slot %s: %w (%s)", slot, ErrSlotMissing, pgErr.Message)
		case strings.Contains(pgErr.Message, "invalidated") || strings.Contains(pgErr.Message, "has been removed"):
			return fmt.Errorf("start replication on slot %s: %w (%s)", slot, ErrSlotInvalidated, pgErr.Message)
		case pgErr.Code == "55006": // object_in_use: "replication slot ... is active for PID ..."
			return fmt.Errorf("start replication on slot %s: %w (%w)", slot, ErrSlotInUse, pgErr)
		}
	}
	return fmt.Errorf("start replication on slot %s: %w", slot, err)
}

// Ack records that everything up to lsn (a commit's end LSN, or a keepalive's
// WAL end when nothing is in flight) is durable in every target. The server is
// told on the next status update; the slot never moves past an acked position.
func (s *ReplicationStream) Ack(lsn LSN) {
	for {
		cur := s.acked.Load()
		if uint64(lsn) <= cur || s.acked.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

// Acked returns the highest acknowledged LSN.
func (s *ReplicationStream) Acked() LSN { return LSN(s.acked.Load()) }

// Next returns the next event. It sends standby status updates as needed
// (on request, every StatusInterval, and soon after Ack moved the position),
// and returns EventKeepalive events so that an idle stream still reports the
// server's WAL end.
func (s *ReplicationStream) Next(ctx context.Context) (Event, error) {
	for {
		if len(s.pending) > 0 {
			ev := s.pending[0]
			s.pending = s.pending[1:]
			return ev, nil
		}
		if err := s.maybeSendStatus(ctx, false); err != nil {
			return Event{}, err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		raw, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return Event{}, ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return Event{}, fmt.Errorf("receive from slot %s: %w: %w", s.cfg.Slot, ErrConnLost, err)
		}
		switch msg := raw.(type) {
		case *pgproto3.ErrorResponse:
			return Event{}, classifySlotError(s.cfg.Slot, pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyData:
			evs, err := s.copyData(ctx, msg.Data)
			if err != nil {
				return Event{}, err
			}
			s.pending = append(s.pending, evs...)
		}
	}
}

func (s *ReplicationStream) copyData(ctx context.Context, data []byte) ([]Event, error) {
	if len(data) == 0 {
		return nil, nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: parse keepalive: %w", ErrDecode, err)
		}
		if ka.ReplyRequested {
			if err := s.maybeSendStatus(ctx, true); err != nil {
				return nil, err
			}
		}
		return []Event{{Kind: EventKeepalive, EndLSN: LSN(ka.ServerWALEnd), Time: ka.ServerTime}}, nil
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: parse xlog data: %w", ErrDecode, err)
		}
		evs, err := s.dec.Decode(xld.WALData)
		if err != nil {
			return nil, fmt.Errorf("%w at %s: %w", ErrDecode, LSN(xld.WALStart), err)
		}
		return evs, nil
	}
	return nil, nil
}

func (s *ReplicationStream) maybeSendStatus(ctx context.Context, force bool) error {
	acked := s.Acked()
	if !force && acked == s.sent && time.Since(s.lastStatus) < s.cfg.StatusInterval {
		return nil
	}
	if !force && acked != s.sent && time.Since(s.lastStatus) < 100*time.Millisecond {
		return nil
	}
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(acked),
		WALFlushPosition: pglogrepl.LSN(acked),
		WALApplyPosition: pglogrepl.LSN(acked),
		ClientTime:       time.Now(),
	})
	if err != nil {
		return fmt.Errorf("send standby status to slot %s: %w: %w", s.cfg.Slot, ErrConnLost, err)
	}
	s.sent, s.lastStatus = acked, time.Now()
	return nil
}

// Close reports the final acknowledged position and closes the connection.
func (s *ReplicationStream) Close(ctx context.Context) error {
	_ = s.maybeSendStatus(ctx, true)
	return s.conn.Close(ctx)
}
