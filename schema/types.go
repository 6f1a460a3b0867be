package schema

// Version and kind accepted by this package.
const (
	APIVersion = "v1"
	KindJob    = "Job"
)

// Trigger types.
const (
	TriggerManual = "manual"
	TriggerCron   = "cron"
	TriggerHTTP   = "http"
)

// Step engines.
const (
	EngineDocker     = "docker"
	EnginePodman     = "podman"
	EngineKubernetes = "kubernetes"
	EngineLocal      = "local"
)

// Trigger rules decide when a step runs, given the outcome of the steps it
// depends on.
const (
	RuleAllSuccess = "all_success"
	RuleAllDone    = "all_done"
	RuleOneSuccess = "one_success"
	RuleAllFailed  = "all_failed"
	RuleAlways     = "always"
)

// Concurrency strategies say what happens when a run is due while maxRuns
// runs of the job are already in flight.
const (
	ConcurrencyQueue   = "queue"
	ConcurrencyReplace = "replace"
	ConcurrencySkip    = "skip"
	ConcurrencyFail    = "fail"
)

// HTTP trigger signature schemes.
const (
	SignatureHMACSHA256 = "hmac-sha256"
	SignatureBearer     = "bearer"
)

// Callback events.
const (
	OnSuccess = "success"
	OnFailure = "failure"
)

// ReservedEnv are the variables the agent sets in every step, over any
// value a manifest gives them: the run id, the job alias, the step name and
// the attempt number (1 for the first).
var ReservedEnv = []string{"CAESIUM_RUN_ID", "CAESIUM_JOB", "CAESIUM_STEP", "CAESIUM_ATTEMPT"}

// CallbackWebhook is the only callback type in v1.
const CallbackWebhook = "webhook"

// PruneLabel, set to PruneDisabled on a job, keeps the job from ever being
// pruned when its manifest disappears from its source.
const (
	PruneLabel    = "caesium.io/prune"
	PruneDisabled = "disabled"
)

// Job is one v1 job definition: a DAG of steps with a trigger and callbacks.
type Job struct {
	Schema     string     `json:"$schema,omitempty" jsonschema:"description=URL or path of this document's JSON Schema; lets editors complete and check the file"`
	APIVersion string     `json:"apiVersion" jsonschema:"required,enum=v1"`
	Kind       string     `json:"kind" jsonschema:"required,enum=Job"`
	Metadata   Metadata   `json:"metadata" jsonschema:"required"`
	Trigger    Trigger    `json:"trigger,omitzero" jsonschema:"description=What starts a run; manual when absent"`
	Callbacks  []Callback `json:"callbacks,omitempty" jsonschema:"description=Notifications sent when a run ends"`
	Steps      []Step     `json:"steps" jsonschema:"required,minItems=1"`
}

// Metadata identifies a job and bounds how its runs execute.
type Metadata struct {
	Alias            string            `json:"alias" jsonschema:"required,description=Unique name of the job: lowercase letters digits and '-'; at most 63 characters"`
	Labels           map[string]string `json:"labels,omitempty" jsonschema:"description=Identifying key/value pairs (Kubernetes label syntax) used by selectors"`
	Annotations      map[string]string `json:"annotations,omitempty" jsonschema:"description=Free-form key/value pairs (Kubernetes annotation key syntax)"`
	MaxParallelTasks int               `json:"maxParallelTasks,omitempty" jsonschema:"minimum=0,description=At most this many steps of one run at once; 0 means no limit"`
	TaskTimeout      Duration          `json:"taskTimeout,omitempty" jsonschema:"description=Default timeout of each step (Go duration such as 10m)"`
	RunTimeout       Duration          `json:"runTimeout,omitempty" jsonschema:"description=Timeout of a whole run (Go duration such as 2h)"`
	Concurrency      Concurrency       `json:"concurrency,omitzero"`
}

// Concurrency bounds the runs of one job that may be in flight at once.
type Concurrency struct {
	MaxRuns  int    `json:"maxRuns,omitempty" jsonschema:"minimum=1,default=1,description=Runs of this job that may be in flight at once"`
	Strategy string `json:"strategy,omitempty" jsonschema:"enum=queue,enum=replace,enum=skip,enum=fail,default=queue,description=What a new run does when maxRuns are in flight"`
}

// Trigger says what starts a run.
type Trigger struct {
	Type          string               `json:"type,omitempty" jsonschema:"enum=manual,enum=cron,enum=http,default=manual"`
	Configuration TriggerConfiguration `json:"configuration,omitzero" jsonschema:"description=Settings of the trigger type: expression/timezone/catchup for cron; path/secret/signatureScheme for http"`
}

// TriggerConfiguration holds the settings of every trigger type; validation
// allows only the fields of the declared type.
type TriggerConfiguration struct {
	// cron
	Expression string `json:"expression,omitempty" jsonschema:"description=cron: five fields or a descriptor such as @hourly"`
	Timezone   string `json:"timezone,omitempty" jsonschema:"description=cron: IANA time zone name; default UTC"`
	Catchup    bool   `json:"catchup,omitempty" jsonschema:"description=cron: run once for schedules missed while the agent was down"`
	// http
	Path            string `json:"path,omitempty" jsonschema:"description=http: URL path that starts a run; begins with /"`
	Secret          string `json:"secret,omitempty" jsonschema:"description=http: secret:// reference to the shared secret that signs requests"`
	SignatureScheme string `json:"signatureScheme,omitempty" jsonschema:"enum=hmac-sha256,enum=bearer,description=http: how requests prove they know the secret; default hmac-sha256"`
}

// Callback is a notification sent when a run ends.
type Callback struct {
	Type    string            `json:"type,omitempty" jsonschema:"enum=webhook,default=webhook"`
	URL     string            `json:"url" jsonschema:"required,description=http or https URL that receives a POST"`
	On      []string          `json:"on,omitempty" jsonschema:"description=Run outcomes that send this callback; default both"`
	Headers map[string]string `json:"headers,omitempty" jsonschema:"description=Request headers; values may be secret:// references"`
}

// Step is one node of the job's DAG: a container (or local process) to run.
type Step struct {
	Name        string            `json:"name" jsonschema:"required,description=Unique name of the step within the job"`
	Engine      string            `json:"engine,omitempty" jsonschema:"enum=docker,enum=podman,enum=kubernetes,enum=local,default=docker"`
	Image       string            `json:"image,omitempty" jsonschema:"description=Container image; required for docker podman and kubernetes"`
	Command     Command           `json:"command,omitempty"`
	Env         map[string]string `json:"env,omitempty" jsonschema:"description=Environment variables; values may be secret:// references"`
	Workdir     string            `json:"workdir,omitempty" jsonschema:"description=Working directory inside the container"`
	Next        StringList        `json:"next,omitempty" jsonschema:"description=Steps that run after this one"`
	DependsOn   StringList        `json:"dependsOn,omitempty" jsonschema:"description=Steps that must finish before this one"`
	Retries     int               `json:"retries,omitempty" jsonschema:"minimum=0,description=Extra attempts after a failure"`
	RetryDelay  Duration          `json:"retryDelay,omitempty" jsonschema:"description=Wait between attempts (Go duration)"`
	Timeout     Duration          `json:"timeout,omitempty" jsonschema:"description=Timeout of one attempt (Go duration); default metadata.taskTimeout"`
	TriggerRule string            `json:"triggerRule,omitempty" jsonschema:"enum=all_success,enum=all_done,enum=one_success,enum=all_failed,enum=always,default=all_success"`
}
