package main

import "github.com/urfave/cli/v2"

func replCommand() *cli.Command {
	return &cli.Command{Name: "repl", Usage: "an interactive session to declare, graph, validate and run workflows", Action: func(c *cli.Context) error { return nil }}
}
