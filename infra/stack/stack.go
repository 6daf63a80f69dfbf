// Package stack runs NetAuto's local AWS stand-ins: DynamoDB Local (AWS's own emulator, a Java
// program) and fauxqs (an SQS-compatible server on Node.js). It fetches them into a cache folder,
// starts them on loopback ports, waits until each answers a real API call, provisions the tables
// and queues declared in internal/resources, and stops every child process on Close or when the
// parent process dies.
package stack

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Region is the AWS region the local stack pretends to be in.
const Region = "us-east-1"

// Options configures Start.
type Options struct {
	// CacheDir holds the fetched stand-ins; default: CacheDir().
	CacheDir string
	// DynamoDBPort and SQSPort pin the ports; 0 picks free ones.
	DynamoDBPort int
	SQSPort      int
	// Logger receives the stand-ins' lifecycle events; default: slog.Default().
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for each stand-in to answer; default 60 s.
	ReadyTimeout time.Duration
	// DataDir, when set, is where DynamoDB Local keeps its database (-dbPath), so tables and
	// items outlive the process; empty keeps everything in memory (-inMemory). The SQS stand-in
	// always keeps its messages in memory.
	DataDir string
}

// Endpoints are the URLs of a running stack.
type Endpoints struct {
	DynamoDB string `json:"dynamodb"`
	SQS      string `json:"sqs"`
}

// Stack is a running pair of stand-ins.
type Stack struct {
	Endpoints Endpoints
	procs     []*proc
	cleanups  []func() // run by Close after the processes stopped (the firewall rule)
	closeOnce sync.Once
	closeErr  error
}

// Versions describes the stand-ins for health reports.
func Versions() map[string]string {
	return map[string]string{
		"dynamodb": "DynamoDB Local " + DynamoDBLocalVersion,
		"sqs":      "fauxqs " + FauxqsVersion,
	}
}

// CacheDir returns the cache folder: $NET_AUTO_CACHE_DIR, or .cache at the repository root
// (the nearest parent folder holding go.mod), or .cache in the working directory.
func CacheDir() string {
	if d := os.Getenv("NET_AUTO_CACHE_DIR"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".cache")
}

// RepoRoot returns the nearest parent of the working directory that holds go.mod, or the working
// directory itself.
func RepoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			return wd
		}
	}
}

// Start fetches (when missing) and starts both stand-ins and waits until they answer. The
// returned Stack must be closed; the children also die with the parent process.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = CacheDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	inst, err := Fetch(ctx, opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("fetch stand-ins: %w", err)
	}
	s := &Stack{}
	if err := s.startDynamoDB(ctx, inst.DynamoDBDir, opts); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startSQS(ctx, inst.SQSDir, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) startDynamoDB(ctx context.Context, dir string, opts Options) error {
	port := opts.DynamoDBPort
	var err error
	if port == 0 {
		if port, err = freePort(); err != nil {
			return err
		}
	}
	// The throughput collector and a pre-sized heap write faster than the JVM's defaults on two
	// cores (docs/performance.md has the measurement).
	argv := []string{"java", "-XX:+UseParallelGC", "-Xms512m", "-Xmx2g", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar"}
	if opts.DataDir != "" {
		// One database file whatever the credentials and region of the caller (-sharedDb), so
		// an AWS CLI with other credentials sees the same tables.
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return fmt.Errorf("dynamodb data folder: %w", err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return fmt.Errorf("create dynamodb data folder: %w", err)
		}
		argv = append(argv, "-dbPath", abs, "-sharedDb")
	} else {
		argv = append(argv, "-inMemory")
	}
	argv = append(argv, "-port", strconv.Itoa(port), "-disableTelemetry")
	s.cleanups = append(s.cleanups, systemFirewall(opts.Logger).protect(ctx, port))
	p, err := startProc("dynamodb-local", dir, nil, opts.Logger, argv...)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	client := DynamoDBClient(endpoint)
	err = waitReady(ctx, opts.ReadyTimeout, p, func(ctx context.Context) error {
		_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	})
	if err != nil {
		return fmt.Errorf("dynamodb local on port %d: %w", port, err)
	}
	s.Endpoints.DynamoDB = endpoint
	opts.Logger.Info("stand-in ready", "name", "dynamodb-local", "version", DynamoDBLocalVersion, "endpoint", endpoint, "data", cmp.Or(opts.DataDir, "in memory"))
	return nil
}

func (s *Stack) startSQS(ctx context.Context, dir string, opts Options) error {
	lines := make(chan string, 1)
	p, err := startProc("fauxqs", dir, lines, opts.Logger, "node", "server.mjs", strconv.Itoa(opts.SQSPort))
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	var endpoint string
	timer := time.NewTimer(opts.ReadyTimeout)
	defer timer.Stop()
	select {
	case line := <-lines:
		endpoint = strings.TrimPrefix(line, "listening ")
	case <-p.done:
		return fmt.Errorf("fauxqs exited before listening: %s", p.tail())
	case <-timer.C:
		return fmt.Errorf("fauxqs did not listen within %s", opts.ReadyTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	client := SQSClient(endpoint)
	err = waitReady(ctx, opts.ReadyTimeout, p, func(ctx context.Context) error {
		_, err := client.ListQueues(ctx, &sqs.ListQueuesInput{})
		return err
	})
	if err != nil {
		return fmt.Errorf("fauxqs at %s: %w", endpoint, err)
	}
	s.Endpoints.SQS = endpoint
	opts.Logger.Info("stand-in ready", "name", "fauxqs", "version", FauxqsVersion, "endpoint", endpoint)
	return nil
}

// Close stops both stand-ins (SIGTERM to each process group, SIGKILL after 5 s) and removes the
// firewall rule that kept DynamoDB Local from other hosts.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for i := len(s.procs) - 1; i >= 0; i-- {
			if err := s.procs[i].stop(5 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		for _, undo := range s.cleanups {
			undo()
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Env returns the environment variables that point the AWS SDK at these endpoints: service
// endpoint overrides (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS), a region and static
// credentials.
func (e Endpoints) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": e.DynamoDB,
		"AWS_ENDPOINT_URL_SQS":      e.SQS,
		"AWS_REGION":                Region,
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
	}
}

// DynamoDBClient returns a client for a DynamoDB-compatible endpoint with local credentials.
func DynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// SQSClient returns a client for an SQS-compatible endpoint with local credentials.
func SQSClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady calls probe with a growing pause until it succeeds, the process exits or the
// timeout passes.
func waitReady(ctx context.Context, timeout time.Duration, p *proc, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := 20 * time.Millisecond
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := probe(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before answering: %s", p.tail())
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(pause*2, 500*time.Millisecond)
	}
}

// proc is a child process in its own process group that dies with its parent.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser // held open for the child's lifetime
	done  chan struct{}

	mu   sync.Mutex
	last []string
}

func startProc(name, dir string, firstLine chan<- string, logger *slog.Logger, argv ...string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A stdin pipe that closes when this process dies tells well-behaved children to exit even
	// where the death signal cannot reach them.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s stdin: %w", name, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s stdout: %w", name, err)
	}
	cmd.Stderr = cmd.Stdout
	p := &proc{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go p.read(out, firstLine, logger)
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) read(r io.Reader, firstLine chan<- string, logger *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if firstLine != nil && strings.HasPrefix(line, "listening ") {
			firstLine <- line
			firstLine = nil
		}
		p.mu.Lock()
		p.last = append(p.last, line)
		if len(p.last) > 20 {
			p.last = p.last[1:]
		}
		p.mu.Unlock()
		logger.Debug("stand-in output", "name", p.name, "line", line)
	}
}

func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.last, "\n")
}

func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}
