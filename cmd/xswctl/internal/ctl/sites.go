package ctl

import (
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// site is one entry of GET /xsw/api/sites.
type site struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	BaseURL string `json:"base_url"`
	Default bool   `json:"default"`
	// State is ok, throttled, circuit_open or refused, as the fetchers report it, or
	// unknown while none has.
	State        string   `json:"state"`
	RateInterval *float64 `json:"rate_interval_seconds"`
}

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
			var sites []site
			body, err := c.do(cmd.Context(), http.MethodGet, apiPrefix+"/sites", nil, &sites)
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

func printSites(w io.Writer, sites []site) error {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, orUnknown(s.State), s.interval(), s.BaseURL, s.Name)
	}
	return tw.Flush()
}

// siteUnknown is the state of a site no fetcher has described yet.
const siteUnknown = "unknown"

// interval says the site's politeness interval: "2.0 s", "off", or "?" when unknown.
func (s site) interval() string {
	switch {
	case s.RateInterval == nil || s.State == siteUnknown:
		return "?"
	case *s.RateInterval == 0:
		return "off"
	}
	return seconds(*s.RateInterval)
}

// orUnknown is s, or "?" when the gateway did not say.
func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
