package devicesim

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/apiwire"
)

// device is one simulated device.
type device struct {
	fleet  *Fleet
	index  int
	spec   DeviceSpec
	pers   *personality
	facts  *facts
	inv    InventoryDevice
	invKey ssh.PublicKey
	// config is the served configuration; ChangeHostKey replaces it.
	config atomic.Pointer[ssh.ServerConfig]
	// recv is what the device received.
	recv   receiver
	ln     net.Listener
	holder int // refuse fault: a socket bound to the port but never listening, or -1
	// port is the port the device must listen on (BasePort+index or its saved one; 0: any).
	port int
	// saved is the device's entry for Spec.StateFile.
	saved   savedDevice
	execOK  bool
	cfgSize int
	// sessions counts the shells and commands the device started.
	sessions atomic.Int64
	// prompts records the keyboard-interactive answers the device received.
	prompts promptLog
}

func newDevice(f *Fleet, index int, ds DeviceSpec, saved map[string]savedDevice) (*device, error) {
	pers, ok := personalities[ds.Platform]
	if !ok {
		return nil, fmt.Errorf("no personality for platform %q", ds.Platform)
	}
	id := fmt.Sprintf("sim-%04d", index+1)
	prev, reuse := saved[id]
	reuse = reuse && prev.Kind == ds.kind()
	served, listed, rec, err := hostKeys(f.spec.Seed, index, ds, prev, reuse)
	if err != nil {
		return nil, err
	}
	rec.ID = id
	fa := newFacts(f.spec.Seed, index, ds, pers, f.spec.Username)
	fa.noisy = f.spec.ConfigNoise
	d := &device{
		fleet: f, index: index, spec: ds, pers: pers, facts: fa, invKey: listed,
		execOK: pers.exec && ds.Fault != FaultExecUnsupported, saved: rec,
	}
	switch {
	case f.spec.BasePort > 0:
		d.port = f.spec.BasePort + index
	case reuse:
		d.port = prev.Port
	}
	if ds.Fault == FaultLargeOutput {
		d.cfgSize = f.spec.LargeOutputBytes
	}
	authMethod := "password"
	if pers.kbdOnly || ds.Fault == FaultOTPPrompt {
		authMethod = "keyboard-interactive"
	}
	tags := map[string]string{"os_version": fa.version, "model": fa.model, "simulated": "true"}
	if ds.Fault != FaultNone {
		tags["sim_fault"] = string(ds.Fault)
	}
	d.inv = InventoryDevice{
		DeviceInput: apiwire.DeviceInput{
			ID:               id,
			Name:             fa.hostname,
			Host:             f.spec.Address,
			Platform:         ds.Platform,
			Username:         f.spec.Username,
			Password:         f.spec.Password,
			AuthMethod:       authMethod,
			Tags:             tags,
			Site:             fa.site,
			HostKey:          strings.TrimSpace(string(ssh.MarshalAuthorizedKey(listed))),
			LegacyAlgorithms: ds.Legacy,
		},
		Fault:        ds.Fault,
		Version:      fa.version,
		Unprivileged: ds.Unprivileged,
	}
	if ds.Unprivileged {
		// Imported, the device enters privileged mode with the fleet's secret.
		d.inv.EnableSecret = f.spec.EnableSecret
	}
	d.config.Store(d.serverConfig(served))
	return d, nil
}

func (d *device) serverConfig(hostKey ssh.Signer) *ssh.ServerConfig {
	user, pass := d.fleet.spec.Username, d.fleet.spec.Password
	if d.spec.Fault == FaultWrongCredentials {
		pass += "-rotated"
	}
	ok := func(u, p string) bool {
		return subtle.ConstantTimeCompare([]byte(u), []byte(user))&subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1
	}
	cfg := &ssh.ServerConfig{
		ServerVersion:               d.pers.serverVersion,
		MaxAuthTries:                6,
		KeyboardInteractiveCallback: d.keyboardInteractive(ok),
	}
	if !d.pers.kbdOnly && d.spec.Fault != FaultOTPPrompt {
		cfg.PasswordCallback = func(conn ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			d.recv.auth(AuthAttempt{Method: "password", User: conn.User(), Secret: string(password)})
			if ok(conn.User(), string(password)) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("password: access denied")
		}
	}
	if keys := d.fleet.spec.AuthorizedKeys; len(keys) > 0 && d.spec.Fault != FaultWrongCredentials {
		cfg.PublicKeyCallback = func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			d.recv.auth(AuthAttempt{Method: "publickey", User: conn.User(), Secret: ssh.FingerprintSHA256(key)})
			for _, k := range keys {
				if conn.User() == user && subtle.ConstantTimeCompare(k.Marshal(), key.Marshal()) == 1 {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("publickey: not authorised")
		}
	}
	// Like most network gear (and OpenSSH before 9.9): no post-quantum key
	// exchange, curve25519 first.
	cfg.KeyExchanges = []string{ssh.KeyExchangeCurve25519, ssh.KeyExchangeECDHP256, ssh.KeyExchangeDH14SHA256}
	if d.spec.Legacy {
		cfg.KeyExchanges = []string{"diffie-hellman-group14-sha1"}
		cfg.Ciphers = []string{"aes128-ctr", "aes128-cbc"}
		cfg.MACs = []string{"hmac-sha1"}
	}
	cfg.AddHostKey(hostKey)
	return cfg
}

// listen opens the device's port and starts serving it: its own port when it has one, else
// one drawn from the stable range (not in taken) when the fleet keeps a state file, else any.
func (d *device) listen(taken map[int]bool, rng *rand.Rand) error {
	lo, hi, ok := stableRange()
	if d.port != 0 || d.fleet.spec.StateFile == "" || !ok {
		return d.listenOn(d.port)
	}
	for range 500 {
		p := lo + rng.IntN(hi-lo+1)
		if taken[p] {
			continue
		}
		if err := d.listenOn(p); err != nil {
			continue // taken by another program
		}
		taken[p] = true
		return nil
	}
	return fmt.Errorf("no free port between %d and %d", lo, hi)
}

// listenOn opens port (0: any) and starts serving it.
func (d *device) listenOn(port int) error {
	d.holder = -1
	if d.spec.Fault == FaultRefuse {
		// A socket bound to the port but never listening: connections are refused, and
		// nothing else (another fleet in the same test run, say) can take the port.
		fd, p, err := bindOnly(d.fleet.spec.Address, port)
		if err != nil {
			return fmt.Errorf("reserve refused port: %w", err)
		}
		d.holder, d.inv.Port, d.saved.Port = fd, p, p
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(d.fleet.spec.Address, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	d.inv.Port = ln.Addr().(*net.TCPAddr).Port
	d.saved.Port = d.inv.Port
	d.ln = ln
	d.fleet.wg.Add(1)
	go d.acceptLoop()
	return nil
}

func (d *device) acceptLoop() {
	defer d.fleet.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if !d.fleet.track(c) {
			_ = c.Close()
			return
		}
		d.fleet.wg.Add(1)
		go d.serveConn(c)
	}
}

func (d *device) serveConn(c net.Conn) {
	defer d.fleet.wg.Done()
	defer d.fleet.untrack(c)
	defer c.Close()
	if d.spec.Fault == FaultHangBeforeBanner {
		// Say nothing; return when the client gives up or the fleet stops.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	sconn, chans, reqs, err := ssh.NewServerConn(c, d.config.Load())
	if err != nil {
		return
	}
	connDone := make(chan struct{})
	var sessions sync.WaitGroup
	d.fleet.wg.Add(1)
	go func() {
		defer d.fleet.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	go func() {
		_ = sconn.Wait()
		close(connDone)
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s := &simSession{d: d, ch: ch, conn: c, connDone: connDone}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			s.serve(creqs)
		}()
	}
	_ = sconn.Close()
	<-connDone
	sessions.Wait()
}

// simSession is one session channel.
type simSession struct {
	d        *device
	ch       ssh.Channel
	conn     net.Conn
	connDone <-chan struct{}
	rows     int
	started  bool
	wg       sync.WaitGroup
}

func (s *simSession) serve(reqs <-chan *ssh.Request) {
	defer s.wg.Wait()
	defer s.ch.Close()
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var p struct {
				Term          string
				Cols, Rows    uint32
				Width, Height uint32
				Modes         string
			}
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			s.rows = int(p.Rows)
			_ = req.Reply(true, nil)
		case "env", "window-change":
			_ = req.Reply(true, nil)
		case "shell":
			if s.started {
				_ = req.Reply(false, nil)
				continue
			}
			s.started = true
			s.d.sessions.Add(1)
			_ = req.Reply(true, nil)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.shell()
				_ = s.ch.Close()
			}()
		case "exec":
			var p struct{ Command string }
			if s.started || !s.d.execOK || ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			s.started = true
			s.d.sessions.Add(1)
			s.d.fleet.logCommand(s.d.inv.ID, p.Command)
			s.d.recv.command(p.Command)
			_ = req.Reply(true, nil)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.exec(p.Command)
				_ = s.ch.Close()
			}()
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// wait blocks for d or until the connection or the fleet ends; it reports
// whether the full delay passed.
func (s *simSession) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.connDone:
		return false
	case <-s.d.fleet.done:
		return false
	}
}

// writer wraps the channel with the device's line ending, fault behaviour and
// pager.
type writer struct {
	s      *simSession
	w      *bufio.Writer
	in     *bufio.Reader // for pager key presses; nil without pager
	eol    string
	lines  int
	page   int  // lines per page; 0 = no paging
	faults bool // apply the device's output fault
	err    error
}

func (w *writer) raw(s string) bool {
	if w.err != nil {
		return false
	}
	if _, err := w.w.WriteString(s); err != nil {
		w.err = err
		return false
	}
	return true
}

func (w *writer) flush() bool {
	if w.err != nil {
		return false
	}
	if err := w.w.Flush(); err != nil {
		w.err = err
		return false
	}
	return true
}

// line writes one output line, applying faults and paging; it reports false
// when the output must stop.
func (w *writer) line(l string) bool {
	select {
	case <-w.s.d.fleet.done:
		return false
	default:
	}
	if !w.raw(l) || !w.raw(w.eol) {
		return false
	}
	w.lines++
	if w.faults {
		spec := w.s.d.fleet.spec
		switch w.s.d.spec.Fault {
		case FaultSlowDrip:
			if !w.flush() || !w.s.wait(spec.DripInterval) {
				return false
			}
		case FaultHangMidOutput:
			if w.lines >= spec.FaultAfterLines {
				w.flush()
				w.s.wait(time.Hour)
				return false
			}
		case FaultDisconnectMidOutput:
			if w.lines >= spec.FaultAfterLines {
				w.flush()
				_ = w.s.conn.Close()
				w.err = errors.New("disconnected")
				return false
			}
		}
	}
	if w.page > 0 && w.in != nil && w.lines%w.page == 0 {
		if !w.raw(w.s.d.pers.more) || !w.flush() {
			return false
		}
		key, err := w.in.ReadByte()
		if err != nil {
			w.err = err
			return false
		}
		w.raw(w.s.d.pers.moreErase)
		switch key {
		case 'q', 'Q', 0x03:
			return false
		case '\r', '\n':
			w.lines = w.page - 1 // one more line
		}
	}
	return true
}

// output runs a command's output generator, endlessly for FaultEndlessOutput.
func (s *simSession) output(w *writer, c command) {
	if w.faults && s.d.spec.Fault == FaultEndlessOutput {
		for i := 0; ; i++ {
			if !w.line(fmt.Sprintf("%s endless output line %d ................................................", s.d.facts.hostname, i)) {
				return
			}
		}
	}
	c.output(s.d.facts, w.line, s.d.cfgSize)
}

// shell runs the interactive CLI.
func (s *simSession) shell() {
	d := s.d
	in := bufio.NewReaderSize(s.ch, 4096)
	w := &writer{s: s, w: bufio.NewWriterSize(s.ch, 16<<10), in: in, eol: "\r\n"}
	pageLen := 24
	if s.rows > 0 {
		pageLen = s.rows
	}
	paging := true
	privileged := !d.spec.Unprivileged
	prompt := d.prompt(privileged)
	if !w.raw(d.pers.motd(d.facts)) || !w.raw(prompt) {
		return
	}
	var line []byte
	lastCR := false
	for {
		if in.Buffered() == 0 && !w.flush() {
			return
		}
		b, err := in.ReadByte()
		if err != nil {
			return
		}
		switch {
		case b == '\n' && lastCR:
			lastCR = false
			continue
		case b == '\r' || b == '\n':
			lastCR = b == '\r'
		case b == 0x7f || b == '\b':
			lastCR = false
			if len(line) > 0 {
				line = line[:len(line)-1]
				w.raw("\b \b")
			}
			continue
		case b == 0x03: // ^C
			lastCR = false
			line = line[:0]
			w.raw("^C\r\n" + prompt)
			continue
		default:
			lastCR = false
			if b >= 0x20 {
				line = append(line, b)
				w.raw(string(b))
			}
			continue
		}
		// End of line: echo the line ending and run the command.
		w.raw("\r\n")
		words := strings.Fields(string(line))
		line = line[:0]
		if len(words) == 0 {
			w.raw(prompt)
			continue
		}
		d.fleet.logCommand(d.inv.ID, strings.Join(words, " "))
		d.recv.command(strings.Join(words, " "))
		c, arg, ok := match(d.pers.commands, words)
		if !ok {
			for _, l := range d.pers.invalid(prompt, words) {
				w.raw(l + "\r\n")
			}
			w.raw(prompt)
			continue
		}
		if c.privileged && !privileged {
			for _, l := range d.pers.enable.refused(prompt, words) {
				w.raw(l + "\r\n")
			}
			w.raw(prompt)
			continue
		}
		if c.reply != nil {
			w.raw(c.reply(arg) + "\r\n")
		}
		switch c.act {
		case actEnable:
			if !privileged {
				granted, ok := s.enable(in, w, d.pers.enable)
				if !ok {
					return
				}
				privileged = granted
				prompt = d.prompt(privileged)
			}
		case actDisable:
			privileged = false
			prompt = d.prompt(privileged)
		case actDialog:
			if !s.dialog(in, w, c.dialog) {
				return
			}
		case actPing:
			if !s.ping(w, arg) {
				return
			}
		case actExit:
			w.flush()
			return
		case actPagingOff:
			if d.spec.Fault != FaultPagingIgnored {
				n, _ := strconv.Atoi(arg)
				paging = n != 0
				if n > 0 {
					pageLen = n
				}
			}
		case actOutput, actInfoOutput:
			w.lines = 0
			w.page = 0
			if paging {
				w.page = pageLen - 1
			}
			w.faults = c.act == actOutput
			s.output(w, c)
			w.faults = false
			w.page = 0
			if w.err != nil {
				return
			}
		}
		if !w.raw(prompt) {
			return
		}
	}
}

// prompt is the device's prompt at the given privilege.
func (d *device) prompt(privileged bool) string {
	p := d.pers.prompt(d.facts)
	if privileged || d.pers.enable == nil {
		return p
	}
	return p[:len(p)-1] + d.pers.enable.unprivileged
}

// exec runs one command on the exec channel.
func (s *simSession) exec(command string) {
	d := s.d
	w := &writer{s: s, w: bufio.NewWriterSize(s.ch, 16<<10), eol: "\r\n", faults: true}
	if d.pers.execShell != nil {
		w.eol = "\n"
		status := d.pers.execShell(s, w, command)
		if !w.flush() {
			return
		}
		_ = s.ch.CloseWrite()
		_, _ = s.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
		return
	}
	words := strings.Fields(command)
	c, _, ok := match(d.pers.commands, words)
	switch {
	case !ok:
		for _, l := range d.pers.invalid("", words) {
			w.raw(l + "\r\n")
		}
	case c.output != nil:
		w.faults = c.act == actOutput
		s.output(w, c)
	}
	w.flush()
	_ = s.ch.CloseWrite()
	// Network operating systems close the channel without an exit status.
}

// linux runs an exec command as the Linux personality's shell does and returns its exit status.
func (s *simSession) linux(w *writer, cmdline string) int {
	f := s.d.facts
	fields := strings.Fields(cmdline)
	if len(fields) == 0 {
		return 0
	}
	stderr := func(msg string) { _, _ = io.WriteString(s.ch.Stderr(), msg+"\n") }
	lines := func(ls ...string) int {
		for _, l := range ls {
			if !w.line(l) {
				break
			}
		}
		return 0
	}
	if s.d.spec.Fault == FaultEndlessOutput {
		s.output(w, command{output: func(*facts, func(string) bool, int) {}})
		return 0
	}
	switch fields[0] {
	case "sudo":
		// sudo -S reads the password from stdin after asking on stderr.
		if len(fields) < 3 || fields[1] != "-S" {
			stderr("usage: sudo -S command")
			return 1
		}
		if !w.flush() {
			return 1
		}
		_, _ = io.WriteString(s.ch.Stderr(), "[sudo] password for "+f.username+": ")
		answer, ok := s.execAnswer()
		if !ok {
			stderr("sudo: no password was provided")
			return 1
		}
		if !passwordAnswer(s.d, answer) {
			stderr("Sorry, try again.")
			stderr("sudo: 1 incorrect password attempt")
			return 1
		}
		stderr("")
		return s.linux(w, strings.Join(fields[2:], " "))
	case "rm":
		if len(fields) != 3 || fields[1] != "-i" {
			stderr("rm: only rm -i FILE is simulated")
			return 1
		}
		if !w.flush() {
			return 1
		}
		_, _ = io.WriteString(s.ch.Stderr(), "rm: remove regular file '"+fields[2]+"'? ")
		if answer, ok := s.execAnswer(); ok && yesAnswer(s.d, answer) {
			return 0
		}
		return 1
	case "uname":
		if len(fields) > 1 && fields[1] == "-a" {
			return lines("Linux " + f.hostname + " " + f.version + " #1 SMP PREEMPT_DYNAMIC Debian (2025-01-06) x86_64 GNU/Linux")
		}
		if len(fields) > 1 && fields[1] == "-r" {
			return lines(f.version) // the same on every device of a version
		}
		return lines("Linux")
	case "hostname":
		return lines(f.hostname)
	case "ip":
		if len(fields) == 2 && (fields[1] == "addr" || fields[1] == "a") {
			ipAddr(f, w.line)
			return 0
		}
		stderr(`Object "` + strings.Join(fields[1:], " ") + `" is unknown, try "ip help".`)
		return 1
	case "true":
		return 0
	case "false":
		return 1
	case "echo":
		return lines(strings.Join(fields[1:], " "))
	case "exit":
		if len(fields) == 2 {
			if n, err := strconv.Atoi(fields[1]); err == nil {
				return n & 0xff
			}
		}
		return 0
	case "seq":
		if len(fields) == 2 {
			if n, err := strconv.Atoi(fields[1]); err == nil {
				for i := 1; i <= n; i++ {
					if !w.line(strconv.Itoa(i)) {
						break
					}
				}
				return 0
			}
		}
		stderr("seq: invalid argument")
		return 1
	case "cat":
		status := 0
		for _, name := range fields[1:] {
			switch name {
			case "/etc/hostname":
				lines(f.hostname)
			case "/etc/os-release":
				lines(`PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"`, `NAME="Debian GNU/Linux"`, `VERSION_ID="12"`, `ID=debian`)
			case "/etc/motd":
				lines("Welcome to "+f.hostname+" ("+f.site+")", "Serial: "+f.serial)
			case "/etc/netauto/running.conf":
				iosConfig(f, w.line, s.d.cfgSize)
			default:
				stderr("cat: " + name + ": No such file or directory")
				status = 1
			}
		}
		return status
	default:
		stderr("sh: 1: " + fields[0] + ": not found")
		return 127
	}
}

// execAnswer reads one line from the exec channel's stdin (without echo: there is no
// terminal); it reports false at end of input.
func (s *simSession) execAnswer() (string, bool) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := s.ch.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				a := strings.TrimSuffix(string(line), "\r")
				s.d.recv.answer(a)
				return a, true
			}
			line = append(line, b[0])
		}
		if err != nil {
			return "", false
		}
	}
}

// bindOnly binds a TCP socket to addr:port (0 picks a port) without listening and returns it.
func bindOnly(addr string, port int) (int, int, error) {
	ip := net.ParseIP(addr).To4()
	if ip == nil {
		return -1, 0, fmt.Errorf("refuse fault needs an IPv4 address, not %q", addr)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("socket: %w", err)
	}
	sa := &syscall.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip)
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("bind %s:%d: %w", addr, port, err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("getsockname: %w", err)
	}
	return fd, got.(*syscall.SockaddrInet4).Port, nil
}
