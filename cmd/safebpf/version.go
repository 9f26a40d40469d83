package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/hazards"
)

// modulePath is the module the command belongs to.
const modulePath = "github.com/safebpf/safebpf"

// versionJSON is the JSON form of `safebpf version`, also in bug reports.
type versionJSON struct {
	SchemaVersion int `json:"schema_version,omitempty"`
	// Version is the module version: a tag ("v0.2.0") when built with
	// 'go install …@version', a pseudo-version, or "(devel)" from a
	// checkout.
	Version   string      `json:"version"`
	Revision  string      `json:"vcs_revision,omitempty"`
	Time      string      `json:"vcs_time,omitempty"`
	Modified  bool        `json:"vcs_modified,omitempty"`
	GoVersion string      `json:"go_version"`
	Platform  string      `json:"platform"`
	Catalog   catalogJSON `json:"catalog"`
}

// catalogJSON identifies a hazard catalog: the built-in one (version,
// bug reports) or the one in effect (hazards).
type catalogJSON struct {
	// Version is the catalog's own version (hazards/catalog.yaml's
	// "version", or a loaded catalog file's).
	Version string `json:"version,omitempty"`
	// Digest is the SHA-256 of the catalog's hazards as JSON: it tells two
	// catalogs apart whatever their version says.
	Digest  string `json:"digest"`
	Hazards int    `json:"hazards"`
}

func (c catalogJSON) describe() string {
	v := "no version"
	if c.Version != "" {
		v = "version " + c.Version
	}
	return fmt.Sprintf("%s, %s", v, c.Digest[:len("sha256:")+12])
}

// catalogInfo identifies a catalog.
func catalogInfo(cat *hazards.Catalog) catalogJSON {
	b, _ := json.Marshal(cat.Hazards()) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return catalogJSON{
		Version: cat.Version(),
		Digest:  "sha256:" + hex.EncodeToString(sum[:]),
		Hazards: len(cat.Hazards()),
	}
}

// buildVersion reads the module version and VCS stamp from the binary.
func buildVersion() versionJSON {
	v := versionJSON{Version: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Catalog: catalogInfo(hazards.Builtin())}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Path == modulePath && bi.Main.Version != "" {
		v.Version = bi.Main.Version
	} else {
		// Built into another module's binary: our module is a dependency.
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				v.Version = d.Version
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (a *app) versionCommand() *cobra.Command {
	var out outputOpts
	c := &cobra.Command{
		Use:   "version",
		Short: "the module version, the Go toolchain and the hazard catalog",
		Long: `Prints the module version (a tag when installed with 'go install
github.com/safebpf/safebpf/cmd/safebpf@latest', "(devel)" from a checkout),
the VCS revision when the build recorded one, the Go toolchain, and the
built-in hazard catalog's version and digest.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			p, asJSON, err := a.output(&out)
			if err != nil {
				return err
			}
			v := buildVersion()
			if asJSON {
				v.SchemaVersion = schemaVersion
				return writeJSON(a.stdout, v)
			}
			p.line("safebpf %s (%s, %s)", v.Version, v.GoVersion, v.Platform)
			if v.Revision != "" {
				rev := v.Revision
				if v.Modified {
					rev += " (modified)"
				}
				if v.Time != "" {
					rev += " " + v.Time
				}
				p.field("revision", rev)
			}
			cv := v.Catalog.Version
			if cv == "" {
				cv = "none (this build's catalog has no version)"
			}
			p.field("hazard catalog", fmt.Sprintf("%d hazards", v.Catalog.Hazards))
			p.field("catalog version", cv)
			digest := v.Catalog.Digest
			if !p.wide {
				digest = digest[:len("sha256:")+16] + "… (-o wide)"
			}
			p.field("catalog digest", digest)
			return p.err
		},
	}
	addOutput(c, &out)
	return c
}
