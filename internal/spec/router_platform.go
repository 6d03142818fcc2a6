package spec

// ALBRouter is an AWS Application Load Balancer: coalmine sets the weights
// of the stable and canary target groups in one listener rule's forward
// action (the targets in them are the platform's business), through the
// ELBv2 API with the AWS SDK's default credential chain.
type ALBRouter struct {
	// ListenerARN is the listener whose rule carries the service. Required.
	ListenerARN string `yaml:"listenerARN" json:"listenerARN"`
	// RuleARN is the rule whose forward action coalmine sets; empty means
	// the listener's default action.
	RuleARN string `yaml:"ruleARN,omitempty" json:"ruleARN,omitempty"`
	// StableTargetGroupARN is the target group serving the stable version.
	// Required.
	StableTargetGroupARN string `yaml:"stableTargetGroupARN" json:"stableTargetGroupARN"`
	// CanaryTargetGroupARN is the target group serving the canary version.
	// Required.
	CanaryTargetGroupARN string `yaml:"canaryTargetGroupARN" json:"canaryTargetGroupARN"`
	// Region is the AWS region; empty takes the SDK's default chain
	// (AWS_REGION, the shared config).
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Endpoint overrides the ELBv2 endpoint URL (a VPC endpoint, a test).
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// StickinessDuration, when set, turns on target-group stickiness in the
	// forward action for this long (1s to 7d), so a client stays on one
	// version as the weight rises.
	StickinessDuration Duration `yaml:"stickinessDuration,omitempty" json:"stickinessDuration,omitempty"`
}

// GatewayAPIRouter is a Kubernetes Gateway API HTTPRoute
// (gateway.networking.k8s.io/v1): coalmine patches the weights of its
// backendRefs to the stable and canary Services (stable 10000 minus the
// canary's basis points, canary the basis points, so the split is exact),
// adds rules named coalmine.<rollout>.* for header routes, and keeps the
// routing generation in the annotation coalmine.dev/generation, through
// the Kubernetes API. It cannot mirror or keep users by a header.
type GatewayAPIRouter struct {
	// Kubeconfig is the kubeconfig file; empty means in-cluster
	// configuration, else $KUBECONFIG or ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context; empty means its current one.
	Context string `yaml:"context,omitempty" json:"context,omitempty"`
	// Namespace of the HTTPRoute and Services. Default "default".
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// HTTPRoute is the route's name. Required.
	HTTPRoute string `yaml:"httpRoute" json:"httpRoute"`
	// StableService is the Service of the stable version. Required.
	StableService string `yaml:"stableService" json:"stableService"`
	// CanaryService is the Service of the canary version. Required.
	CanaryService string `yaml:"canaryService" json:"canaryService"`
}

// IstioRouter is an Istio VirtualService (networking.istio.io/v1): coalmine
// patches the weights of its HTTP routes' destinations (hosts or
// DestinationRule subsets) in whole percent (rounded half up, 1..99 while
// the canary has a partial weight), adds http routes named
// coalmine.<rollout>.* before the others for header and mirror routes,
// and keeps the generation and the exact weight in the annotations
// coalmine.dev/generation and coalmine.dev/weight, through the Kubernetes
// API. It cannot keep users by a header.
type IstioRouter struct {
	// Kubeconfig is the kubeconfig file; empty means in-cluster
	// configuration, else $KUBECONFIG or ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context; empty means its current one.
	Context string `yaml:"context,omitempty" json:"context,omitempty"`
	// Namespace of the VirtualService. Default "default".
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// VirtualService is its name. Required.
	VirtualService string `yaml:"virtualService" json:"virtualService"`
	// Routes names the VirtualService's HTTP routes coalmine sets; empty
	// means the only one (an error when there are several).
	Routes []string `yaml:"routes,omitempty" json:"routes,omitempty"`
	// StableHost is the stable version's destination host (a Service, as
	// the VirtualService's destinations write it: name or FQDN);
	// or use host with stableSubset and canarySubset (DestinationRule
	// subsets). One of the two forms is required.
	StableHost string `yaml:"stableHost,omitempty" json:"stableHost,omitempty"`
	// CanaryHost is the canary version's destination host.
	CanaryHost string `yaml:"canaryHost,omitempty" json:"canaryHost,omitempty"`
	// Host is the destination host when versions are subsets.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// StableSubset names the stable version's DestinationRule subset.
	StableSubset string `yaml:"stableSubset,omitempty" json:"stableSubset,omitempty"`
	// CanarySubset names the canary version's DestinationRule subset.
	CanarySubset string `yaml:"canarySubset,omitempty" json:"canarySubset,omitempty"`
}
