// Command netauto is the NetAuto command-line client: devices, runs, bulk jobs and retention
// over the HTTPS API. See docs/cli.md.
package main

import (
	"context"
	"os"

	"github.com/netauto/netauto/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
