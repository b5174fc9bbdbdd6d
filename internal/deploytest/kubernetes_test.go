package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sObject is one parsed manifest document.
type k8sObject struct {
	file string
	head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string            `yaml:"name"`
			Namespace string            `yaml:"namespace"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
	}
	node yaml.Node
}

// decode decodes the whole document into v.
func (o k8sObject) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %s: %v", o.file, o.head.Kind, err)
	}
}

// k8sAPIVersions are the kinds the manifests may hold, with their API.
var k8sAPIVersions = map[string]string{
	"Namespace":           "v1",
	"ConfigMap":           "v1",
	"Secret":              "v1",
	"Service":             "v1",
	"Deployment":          "apps/v1",
	"PodDisruptionBudget": "policy/v1",
	"Ingress":             "networking.k8s.io/v1",
	"NetworkPolicy":       "networking.k8s.io/v1",
	"Kustomization":       "kustomize.config.k8s.io/v1beta1",
}

// readManifests parses every document of every .yaml file in
// deploy/kubernetes.
func readManifests(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	var out []k8sObject
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			o := k8sObject{file: filepath.Base(f)}
			if err := dec.Decode(&o.node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: not YAML: %v", o.file, err)
			}
			if err := o.node.Decode(&o.head); err != nil {
				t.Fatalf("%s: %v", o.file, err)
			}
			out = append(out, o)
		}
	}
	return out
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type k8sSecurityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	Capabilities             *struct {
		Drop []string `yaml:"drop"`
		Add  []string `yaml:"add"`
	} `yaml:"capabilities"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type k8sContainerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type k8sContainer struct {
	Name  string             `yaml:"name"`
	Image string             `yaml:"image"`
	Args  []string           `yaml:"args"`
	Ports []k8sContainerPort `yaml:"ports"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *k8sSecurityContext `yaml:"securityContext"`
	StartupProbe    *k8sProbe           `yaml:"startupProbe"`
	LivenessProbe   *k8sProbe           `yaml:"livenessProbe"`
	ReadinessProbe  *k8sProbe           `yaml:"readinessProbe"`
	Lifecycle       *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

type k8sDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				AutomountServiceAccountToken  *bool               `yaml:"automountServiceAccountToken"`
				EnableServiceLinks            *bool               `yaml:"enableServiceLinks"`
				TerminationGracePeriodSeconds int                 `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               *k8sSecurityContext `yaml:"securityContext"`
				Containers                    []k8sContainer      `yaml:"containers"`
				Volumes                       []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []k8sServicePort  `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	Spec struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sIngress struct {
	Spec struct {
		TLS []struct {
			Hosts []string `yaml:"hosts"`
		} `yaml:"tls"`
		Rules []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `yaml:"path"`
					PathType string `yaml:"pathType"`
					Backend  struct {
						Service struct {
							Name string `yaml:"name"`
							Port struct {
								Name string `yaml:"name"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type k8sNetworkPolicy struct {
	Spec struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				NamespaceSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"namespaceSelector"`
				PodSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				IPBlock *struct {
					CIDR string `yaml:"cidr"`
				} `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Port     string `yaml:"port"`
				Protocol string `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

// matches reports whether every label of selector is in labels.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetes checks deploy/kubernetes: the kinds and their APIs, the
// selectors, the Deployment's hardening, its probes against a running
// issuer, its environment against the issuer's settings and the Secret,
// the ConfigMap's config.yaml through the issuer's loader, and which paths
// the Ingress publishes.
func TestKubernetes(t *testing.T) {
	objs := readManifests(t)
	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		want, ok := k8sAPIVersions[o.head.Kind]
		if !ok {
			t.Errorf("%s: kind %q is not one the tests know", o.file, o.head.Kind)
			continue
		}
		if o.head.APIVersion != want {
			t.Errorf("%s: %s has apiVersion %q, want %q", o.file, o.head.Kind, o.head.APIVersion, want)
		}
		byKind[o.head.Kind] = append(byKind[o.head.Kind], o)
	}
	one := func(kind string) k8sObject {
		t.Helper()
		if len(byKind[kind]) != 1 {
			t.Fatalf("want one %s, have %d", kind, len(byKind[kind]))
		}
		return byKind[kind][0]
	}

	// Every manifest is applied by kustomization.yaml, except the example
	// Secret; every object lives in the namespace.
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	one("Kustomization").decode(t, &kust)
	ns := one("Namespace").head.Metadata.Name
	for _, o := range objs {
		switch o.head.Kind {
		case "Kustomization":
			continue
		case "Namespace":
		default:
			if o.head.Metadata.Namespace != ns {
				t.Errorf("%s: %s %s is in namespace %q, want %q", o.file, o.head.Kind, o.head.Metadata.Name, o.head.Metadata.Namespace, ns)
			}
		}
		listed := slices.Contains(kust.Resources, o.file)
		if o.file == "secret.example.yaml" && listed {
			t.Error("kustomization.yaml applies secret.example.yaml: its placeholders must never be applied")
		}
		if o.file != "secret.example.yaml" && !listed {
			t.Errorf("kustomization.yaml does not list %s", o.file)
		}
	}

	var dep k8sDeployment
	one("Deployment").decode(t, &dep)
	pod := dep.Spec.Template.Spec
	podLabels := dep.Spec.Template.Metadata.Labels
	if !matches(dep.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment: selector %v does not match the pod labels %v", dep.Spec.Selector.MatchLabels, podLabels)
	}
	if dep.Spec.Replicas < 2 {
		t.Errorf("Deployment: %d replicas; want at least 2 (with the PodDisruptionBudget)", dep.Spec.Replicas)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment: %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	checkPinned(t, "Deployment", c.Image)

	t.Run("security", func(t *testing.T) {
		psc, sc := pod.SecurityContext, c.SecurityContext
		if psc == nil || sc == nil {
			t.Fatal("Deployment: want a pod and a container securityContext")
		}
		isTrue := func(b *bool) bool { return b != nil && *b }
		isFalse := func(b *bool) bool { return b != nil && !*b }
		if !isTrue(psc.RunAsNonRoot) || !isTrue(sc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Error("want runAsNonRoot: true (pod and container) and a non-zero runAsUser")
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" {
			t.Error("want seccompProfile RuntimeDefault")
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) || !isFalse(sc.AllowPrivilegeEscalation) {
			t.Error("want readOnlyRootFilesystem: true and allowPrivilegeEscalation: false")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Error("want capabilities drop [ALL], none added")
		}
		if !isFalse(pod.AutomountServiceAccountToken) {
			t.Error("want automountServiceAccountToken: false (the issuer never calls the API server)")
		}
		if !isFalse(pod.EnableServiceLinks) {
			t.Error("want enableServiceLinks: false (the Service named issuer would inject ISSUER_* variables)")
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
			t.Errorf("want cpu and memory requests and a memory limit; got %+v", c.Resources)
		}
	})

	// The ConfigMap's config.yaml, with the Secret's variables, through
	// the issuer's own loader.
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	cmObj := one("ConfigMap")
	cmObj.decode(t, &cm)
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	secretObj := one("Secret")
	secretObj.decode(t, &secret)

	var configPath string
	if i := slices.Index(c.Args, "--config"); i >= 0 && i+1 < len(c.Args) && c.Args[0] == "serve" {
		configPath = c.Args[i+1]
	} else {
		t.Fatalf("Deployment: args %q, want serve --config FILE", c.Args)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cmObj.head.Metadata.Name &&
				path.Dir(configPath) == path.Clean(m.MountPath) && cm.Data[path.Base(configPath)] != "" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("Deployment: --config %s is not a key of ConfigMap %s mounted at its directory", configPath, cmObj.head.Metadata.Name)
	}
	valid := map[string]string{
		"ISSUER_SECRET":      randomHex(32),
		"ISSUER_ADMIN_TOKEN": randomHex(32),
		"ISSUER_REDIS_URL":   "rediss://:" + randomHex(16) + "@redis.example.internal:6380/0",
	}
	// trusted_proxies cannot have a default that fits every cluster, and a
	// wide one (10.0.0.0/8) lets any pod pick the address that gets
	// blocked: it is a placeholder that the issuer refuses, so that nobody
	// runs without choosing the ingress controller's range.
	cmText := cm.Data[path.Base(configPath)]
	var cmSettings map[string]any
	if err := yaml.Unmarshal([]byte(cmText), &cmSettings); err != nil {
		t.Fatalf("ConfigMap config.yaml: %v", err)
	}
	placeholder, _ := cmSettings["trusted_proxies"].(string)
	if !strings.HasPrefix(placeholder, "REPLACE-ME") {
		t.Errorf("ConfigMap: trusted_proxies = %q, want a REPLACE-ME placeholder for the ingress controller's pod range", placeholder)
	}
	if _, err := loadConfig(t, cmText, valid); err == nil || !strings.Contains(err.Error(), "ISSUER_TRUSTED_PROXIES (trusted_proxies)") {
		t.Errorf("the issuer must refuse the ConfigMap until trusted_proxies is set; got %v", err)
	}
	if placeholder != "" {
		cmText = strings.Replace(cmText, placeholder, "10.244.1.0/24", 1) // what an operator sets
	}
	cfg, err := loadConfig(t, cmText, valid)
	if err != nil {
		t.Fatalf("the issuer refuses the ConfigMap's config.yaml: %v", err)
	}
	if cfg.AdminAddr == "" {
		t.Error("ConfigMap: no admin_addr; the admin API and /metrics belong on a listener the Ingress does not reach")
	}
	// The two Services: the public one (the Ingress's backend) and the
	// admin listener's.
	services := map[string]k8sService{}
	var svcObj k8sObject
	for _, o := range byKind["Service"] {
		var svc k8sService
		o.decode(t, &svc)
		services[o.head.Metadata.Name] = svc
		if o.head.Metadata.Name == "issuer" {
			svcObj = o
		}
	}
	if len(services) != 2 || svcObj.file == "" {
		t.Fatalf("want two Services, issuer and the admin listener's; have %v", slices.Collect(maps.Keys(services)))
	}

	t.Run("environment", func(t *testing.T) {
		issuerEnv := configEnv()
		for _, e := range c.Env {
			if !issuerEnv[e.Name] && e.Name != "GOMEMLIMIT" {
				t.Errorf("env %s is not a setting of the issuer (internal/config)", e.Name)
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secretObj.head.Metadata.Name {
				t.Errorf("env %s: from Secret %q, want %q", e.Name, ref.Name, secretObj.head.Metadata.Name)
			}
			if _, ok := secret.StringData[ref.Key]; !ok {
				t.Errorf("env %s: key %q is not in secret.example.yaml", e.Name, ref.Key)
			}
		}
		// The example's placeholders stop the issuer at once.
		for k, v := range secret.StringData {
			if !strings.Contains(v, "REPLACE-ME") {
				t.Errorf("secret.example.yaml: %s=%q is not a REPLACE-ME placeholder", k, v)
			}
		}
		_, err := loadConfig(t, cm.Data[path.Base(configPath)], secret.StringData)
		for _, name := range []string{"ISSUER_SECRET", "ISSUER_ADMIN_TOKEN"} {
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("the issuer started with secret.example.yaml's placeholders must refuse %s; got %v", name, err)
			}
		}
	})

	// The probes and ports against a running issuer.
	t.Run("probes", func(t *testing.T) {
		ports := map[string]int{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		_, addrPort, _ := net.SplitHostPort(cfg.Addr)
		if strconv.Itoa(ports["http"]) != addrPort {
			t.Errorf("containerPort http %d is not the issuer's addr %s", ports["http"], cfg.Addr)
		}
		_, adminPort, _ := net.SplitHostPort(cfg.AdminAddr)
		if strconv.Itoa(ports["admin"]) != adminPort {
			t.Errorf("containerPort admin %d is not the issuer's admin_addr %s", ports["admin"], cfg.AdminAddr)
		}
		base, _ := startIssuer(t)
		for name, p := range map[string]*k8sProbe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: want an httpGet probe", name)
				continue
			}
			if _, ok := ports[p.HTTPGet.Port]; !ok {
				t.Errorf("%s: port %q is not a container port", name, p.HTTPGet.Port)
			}
			if code, err := httpGetStatus(base + p.HTTPGet.Path); err != nil || code != http.StatusOK {
				t.Errorf("%s: GET %s on a running issuer: %d %v, want 200", name, p.HTTPGet.Path, code, err)
			}
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("livenessProbe: %s, want /healthz (process alive; not the store)", c.LivenessProbe.HTTPGet.Path)
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("readinessProbe: %s, want /readyz", c.ReadinessProbe.HTTPGet.Path)
		}
		sleep := 0
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			sleep = c.Lifecycle.PreStop.Sleep.Seconds
		}
		need := float64(sleep) + (cfg.ShutdownDrainDelay + cfg.ShutdownTimeout).Seconds()
		if grace := pod.TerminationGracePeriodSeconds; float64(grace) <= need {
			t.Errorf("terminationGracePeriodSeconds %d is not above preStop %ds + shutdown_drain_delay %s + shutdown_timeout %s",
				grace, sleep, cfg.ShutdownDrainDelay, cfg.ShutdownTimeout)
		}
	})

	t.Run("service and disruption budget", func(t *testing.T) {
		for name, svc := range services {
			if !matches(svc.Spec.Selector, podLabels) {
				t.Errorf("Service %s: selector %v does not match the pods %v", name, svc.Spec.Selector, podLabels)
			}
			for _, p := range svc.Spec.Ports {
				if !slices.ContainsFunc(c.Ports, func(cp k8sContainerPort) bool { return cp.Name == p.TargetPort }) {
					t.Errorf("Service %s: targetPort %q is not a container port", name, p.TargetPort)
				}
				// One Service per listener: the public one never reaches
				// the admin port, the admin one nothing else.
				if (name == "issuer") == (p.TargetPort == "admin") {
					t.Errorf("Service %s: targetPort %q; the admin port belongs to the admin Service alone", name, p.TargetPort)
				}
			}
		}
		// admin_url is the admin Service's in-cluster name and port.
		u, err := url.Parse(cfg.AdminBaseURL())
		if err != nil {
			t.Fatal(err)
		}
		svcName, rest, _ := strings.Cut(u.Hostname(), ".")
		adminSvc, ok := services[svcName]
		if !ok || svcName == "issuer" || !strings.HasPrefix(rest, ns+".svc") ||
			len(adminSvc.Spec.Ports) != 1 || strconv.Itoa(adminSvc.Spec.Ports[0].Port) != u.Port() {
			t.Errorf("admin_url %s is not the admin Service's name in namespace %s and its port", cfg.AdminBaseURL(), ns)
		}
		var pdb k8sPDB
		one("PodDisruptionBudget").decode(t, &pdb)
		if !matches(pdb.Spec.Selector.MatchLabels, podLabels) {
			t.Errorf("PodDisruptionBudget: selector %v does not match the pods", pdb.Spec.Selector.MatchLabels)
		}
		if pdb.Spec.MinAvailable < 1 || pdb.Spec.MinAvailable >= dep.Spec.Replicas {
			t.Errorf("PodDisruptionBudget: minAvailable %d with %d replicas: a drain would block or take every pod", pdb.Spec.MinAvailable, dep.Spec.Replicas)
		}
	})

	// The Ingress publishes every endpoint the metadata advertises to
	// clients, and neither the admin API nor metrics nor health checks.
	t.Run("ingress", func(t *testing.T) {
		var ing k8sIngress
		one("Ingress").decode(t, &ing)
		svc := services[svcObj.head.Metadata.Name]
		u, _ := url.Parse(cfg.URL)
		var prefixes []string
		for _, r := range ing.Spec.Rules {
			if r.Host != u.Hostname() {
				t.Errorf("Ingress host %q is not the host of the issuer url %s", r.Host, cfg.URL)
			}
			for _, p := range r.HTTP.Paths {
				port := p.Backend.Service.Port.Name
				if p.Backend.Service.Name != svcObj.head.Metadata.Name || port == "admin" ||
					!slices.ContainsFunc(svc.Spec.Ports, func(sp k8sServicePort) bool { return sp.Name == port && sp.TargetPort != "admin" }) {
					t.Errorf("Ingress path %s: backend %+v is not the Service's port", p.Path, p.Backend.Service)
				}
				prefixes = append(prefixes, p.Path)
			}
		}
		if len(ing.Spec.TLS) == 0 || !slices.Contains(ing.Spec.TLS[0].Hosts, u.Hostname()) {
			t.Errorf("Ingress: no TLS for %s", u.Hostname())
		}
		published := func(p string) bool {
			return slices.ContainsFunc(prefixes, func(pre string) bool { return p == pre || strings.HasPrefix(p, strings.TrimSuffix(pre, "/")+"/") })
		}
		base, _ := startIssuer(t, "ISSUER_ADMIN_TOKEN="+randomHex(32))
		resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		err = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range md {
			s, ok := v.(string)
			if !ok || !strings.HasPrefix(s, base+"/") || k == "issuer" {
				continue
			}
			p := strings.TrimPrefix(s, base)
			if want := !strings.HasPrefix(p, "/admin/"); published(p) != want {
				t.Errorf("metadata %s %s: published by the Ingress %v, want %v", k, p, published(p), want)
			}
		}
		for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/jwks.json"} {
			if !published(p) {
				t.Errorf("%s is not published by the Ingress", p)
			}
		}
		for _, p := range []string{"/admin/clients", "/metrics", "/healthz", "/readyz"} {
			if published(p) {
				t.Errorf("%s is published by the Ingress; keep it inside the cluster", p)
			}
		}
	})

	// The NetworkPolicy: the public port from the ingress controller's
	// namespace only, the admin port from the admin namespace only, and
	// nothing else.
	t.Run("network policy", func(t *testing.T) {
		var np k8sNetworkPolicy
		one("NetworkPolicy").decode(t, &np)
		if !matches(np.Spec.PodSelector.MatchLabels, podLabels) {
			t.Errorf("NetworkPolicy: podSelector %v does not select the pods %v", np.Spec.PodSelector.MatchLabels, podLabels)
		}
		if !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
			t.Errorf("NetworkPolicy: policyTypes %v, want Ingress", np.Spec.PolicyTypes)
		}
		from := map[string][]string{} // container port name -> namespaces allowed
		for i, r := range np.Spec.Ingress {
			if len(r.From) == 0 || len(r.Ports) == 0 {
				t.Errorf("NetworkPolicy rule %d: allows every source or every port; name both", i)
			}
			var nss []string
			for _, f := range r.From {
				if f.IPBlock != nil || f.NamespaceSelector == nil || f.PodSelector != nil {
					t.Errorf("NetworkPolicy rule %d: a source that is not a whole namespace: %+v", i, f)
					continue
				}
				n := f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
				if n == "" || len(f.NamespaceSelector.MatchLabels) != 1 {
					t.Errorf("NetworkPolicy rule %d: namespaceSelector %v, want one namespace by kubernetes.io/metadata.name", i, f.NamespaceSelector.MatchLabels)
				}
				nss = append(nss, n)
			}
			for _, p := range r.Ports {
				if !slices.ContainsFunc(c.Ports, func(cp k8sContainerPort) bool { return cp.Name == p.Port }) {
					t.Errorf("NetworkPolicy rule %d: port %q is not a container port", i, p.Port)
				}
				from[p.Port] = append(from[p.Port], nss...)
			}
		}
		pub, adm := from["http"], from["admin"]
		if len(pub) != 1 || len(adm) != 1 {
			t.Fatalf("NetworkPolicy: the http port from %v, the admin port from %v; want one namespace each", pub, adm)
		}
		if pub[0] == adm[0] || pub[0] == ns || adm[0] == ns {
			t.Errorf("NetworkPolicy: http from %q, admin from %q; want the ingress controller's and an admin namespace, apart and not %q", pub[0], adm[0], ns)
		}
		if len(from) != len(c.Ports) {
			t.Errorf("NetworkPolicy: rules for ports %v, container ports %v", slices.Collect(maps.Keys(from)), c.Ports)
		}
	})
}
