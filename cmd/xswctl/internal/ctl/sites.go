package ctl

import (
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
)

func (a *app) sitesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sites",
		Short: "List the source sites the gateway serves, the default first, with their state and politeness interval",
		Long: `sites lists the source sites the gateway serves (GET /xsw/api/sites): each site's id, the
one --site takes, whether it is the default site (the one the unprefixed routes serve),
its state as the fetchers report it (ok, throttled, circuit_open, refused), the interval
between requests to it, cluster-wide, its base URL and its name.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.publicClient()
			if err != nil {
				return err
			}
			var sites []api.Site
			body, err := c.do(cmd.Context(), http.MethodGet, api.Prefix+"/sites", nil, &sites)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			return printSites(a.out, sites)
		},
	}
}

func printSites(w io.Writer, sites []api.Site) error {
	if len(sites) == 0 {
		_, err := fmt.Fprintln(w, "no sites")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tSTATE\tINTERVAL\tBASE URL\tNAME")
	for _, s := range sites {
		id := s.ID
		if s.Default {
			id += " (default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, orUnknown(s.State), interval(s), s.BaseURL, s.Name)
	}
	return tw.Flush()
}

// interval says the site's politeness interval: "2.0 s", "off", or "?" when unknown.
func interval(s api.Site) string {
	switch {
	case s.State == api.SiteUnknown:
		return "?"
	case s.RateInterval == 0:
		return "off"
	}
	return seconds(s.RateInterval)
}

// orUnknown is s, or "?" when the gateway did not say.
func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
