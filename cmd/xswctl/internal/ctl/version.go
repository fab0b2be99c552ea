package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/buildinfo"
)

// versions is what version --json prints: xswctl's build, and the gateway's unless
// --client.
type versions struct {
	Xswctl  buildinfo.Info `json:"xswctl"`
	Gateway *api.Version   `json:"gateway,omitempty"`
}

func (a *app) versionCmd() *cobra.Command {
	client := false
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print xswctl's version and the gateway's",
		Long: `version prints which build xswctl is and, unless --client, which build the gateway
is (GET /xsw/api/admin/version, with the admin token).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versions{Xswctl: buildinfo.Get()}
			if !a.json {
				fmt.Fprintf(a.out, "xswctl   %s\n", v.Xswctl)
			}
			if !client {
				c, err := a.client()
				if err != nil {
					return err
				}
				var gw api.Version
				if _, err := c.do(cmd.Context(), http.MethodGet, api.Prefix+"/admin/version", nil, &gw); err != nil {
					return err
				}
				v.Gateway = &gw
				if !a.json {
					info := buildinfo.Info{Version: gw.Version, Revision: gw.Revision, Time: gw.Time, GoVersion: gw.GoVersion}
					fmt.Fprintf(a.out, "gateway  %s\n", info)
				}
			}
			if a.json {
				b, err := json.Marshal(v)
				if err != nil {
					return err
				}
				return printJSON(a.out, b)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&client, "client", false, "print xswctl's version only, without asking the gateway")
	return cmd
}

// completeSites completes --site with the sites the gateway serves; nothing when it
// does not answer within a moment.
func (a *app) completeSites(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	c, err := a.publicClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var sites []api.Site
	if _, err := c.do(ctx, http.MethodGet, api.Prefix+"/sites", nil, &sites); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.ID + "\t" + s.Name
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
