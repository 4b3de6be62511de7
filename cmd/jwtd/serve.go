package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/httpapi"
	"github.com/jwtd/jwtd/internal/token"
)

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd serve", "jwtd serve [flags]", e, true)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return err
	}
	level, _ := cfg.Level()
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	svc, err := buildService(cfg)
	if err != nil {
		return err
	}
	var current atomic.Pointer[token.Service]
	current.Store(svc)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           httpapi.NewServer(logger, current.Load, httpapi.Options{MaxBodyBytes: cfg.HTTP.MaxBodyBytes}),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "version", version, "data_dir", cfg.DataDir)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var rot rotation
	for {
		select {
		case err := <-serveErr:
			return err
		case <-hup:
			reload(fs, e, logger, &current, &rot)
		case <-ctx.Done():
			logger.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout.String())
			sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			logger.Info("stopped")
			return nil
		}
	}
}

// reload re-reads the configuration and keys (SIGHUP). The listener and its
// connections are untouched; on any error the running keys stay.
func reload(fs *pflag.FlagSet, e env, logger *slog.Logger, current *atomic.Pointer[token.Service], rot *rotation) {
	cfg, err := config.Load(fs, e.getenv)
	if err == nil {
		var next *token.Service
		if next, err = buildService(cfg); err == nil {
			if err = rot.check(current.Load(), next, time.Now()); err == nil {
				current.Store(next)
				logger.Info("reloaded keys and profiles", "keys", len(next.Keys().All()))
				return
			}
		}
	}
	logger.Error("reload refused; keeping the running keys and profiles", "err", err)
}
