{{/* Chart name, truncated to the 63 characters Kubernetes allows. */}}
{{- define "drs-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "drs-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "drs-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "drs-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drs-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "drs-exporter.labels" -}}
helm.sh/chart: {{ include "drs-exporter.chart" . }}
{{ include "drs-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: exporter
app.kubernetes.io/part-of: huaweicloud-drs-exporter
{{- end }}

{{- define "drs-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "drs-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "drs-exporter.secretName" -}}
{{- default (include "drs-exporter.fullname" .) .Values.credentials.existingSecret }}
{{- end }}

{{- define "drs-exporter.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where secret files are mounted in the container. */}}
{{- define "drs-exporter.secretDir" -}}/etc/drs-exporter/secrets{{- end }}

{{/* The exporter's configuration file: config values plus the auth section of the credential type. */}}
{{- define "drs-exporter.configFile" -}}
{{- $config := deepCopy .Values.config }}
{{- $c := .Values.credentials }}
{{- $dir := include "drs-exporter.secretDir" . }}
{{- /* The status page judges cut-over readiness with the rules' thresholds: one value feeds both. */}}
{{- range $key := list "cutover_delay_seconds" "cutover_comparison_max_age_seconds" }}
{{- $value := index $.Values.prometheusRule.settings $key }}
{{- if and (hasKey $config $key) (ne (toString (index $config $key)) (toString $value)) }}
{{- fail (printf "config.%s (%v) differs from prometheusRule.settings.%s (%v): set it in prometheusRule.settings only, which feeds both the rules and the exporter's status page" $key (index $config $key) $key $value) }}
{{- end }}
{{- $_ := set $config $key $value }}
{{- end }}
{{- if eq $c.type "token" }}
{{- $_ := set $config "auth" (dict "token_file" (printf "%s/%s" $dir $c.keys.token)) }}
{{- else if eq $c.type "password" }}
{{- $auth := dict "username" $c.username "domain_name" $c.domainName "password_file" (printf "%s/%s" $dir $c.keys.password) }}
{{- if $c.iamEndpoint }}{{- $_ := set $auth "iam_endpoint" $c.iamEndpoint }}{{- end }}
{{- $_ := set $config "auth" $auth }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* Seconds of a Prometheus duration such as 1m30s or 55s. */}}
{{- define "drs-exporter.seconds" -}}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h)" (toString .) -1 }}
{{- $total = addf $total (mulf (regexFind "^[0-9]+" . | float64) (get $units (regexFind "(ms|s|m|h)$" .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/* Refuse scrape and refresh timings that cannot work (README "Timings"):
     refresh_timeout < scrapeTimeout < interval <= cache_ttl. */}}
{{- define "drs-exporter.checkTimings" -}}
{{- $interval := include "drs-exporter.seconds" .Values.serviceMonitor.interval | float64 }}
{{- $timeout := include "drs-exporter.seconds" .Values.serviceMonitor.scrapeTimeout | float64 }}
{{- $ttl := 30.0 }}
{{- if not (kindIs "invalid" .Values.config.cache_ttl) }}{{ $ttl = .Values.config.cache_ttl | float64 }}{{ end }}
{{- $refresh := 60.0 }}
{{- if not (kindIs "invalid" .Values.config.refresh_timeout) }}{{ $refresh = .Values.config.refresh_timeout | float64 }}{{ end }}
{{- if not (lt $refresh $timeout) }}
{{- fail (printf "config.refresh_timeout (%vs) must be below serviceMonitor.scrapeTimeout (%vs): a longer refresh is cut off by the scrape and reported as up 0 (README \"Timings\")" $refresh $timeout) }}
{{- end }}
{{- if not (lt $timeout $interval) }}
{{- fail (printf "serviceMonitor.scrapeTimeout (%vs) must be below serviceMonitor.interval (%vs) (README \"Timings\")" $timeout $interval) }}
{{- end }}
{{- if lt $ttl $interval }}
{{- fail (printf "config.cache_ttl (%vs) must be at least serviceMonitor.interval (%vs): otherwise every scrape waits for a refresh (README \"Timings\")" $ttl $interval) }}
{{- end }}
{{- if .Values.prometheusRule.enabled }}
{{- $lookback := include "drs-exporter.seconds" .Values.prometheusRule.settings.lookback | float64 }}
{{- if lt $lookback (addf (mulf 2 $interval) $timeout) }}
{{- fail (printf "prometheusRule.settings.lookback (%vs) must be at least two serviceMonitor.interval plus scrapeTimeout (%vs): otherwise one missed scrape drops series from the recording rules (README \"Timings\")" $lookback (addf (mulf 2 $interval) $timeout)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Refuse endpoint settings that need a web config the exporter does not have. */}}
{{- define "drs-exporter.checkWebConfig" -}}
{{- if not .Values.webConfig.existingSecret }}
{{- if eq (lower .Values.webConfig.scheme) "https" }}
{{- fail "webConfig.scheme https needs webConfig.existingSecret with a tls_server_config: without it the exporter serves plain HTTP" }}
{{- end }}
{{- if .Values.serviceMonitor.basicAuth }}
{{- fail "serviceMonitor.basicAuth needs webConfig.existingSecret with basic_auth_users: without it the exporter asks for no credentials" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The matchers every rule adds to its selectors (prometheusRule.settings.selector, else this
     release's namespace and Service): two releases' rules each judge only their own exporter. */}}
{{- define "drs-exporter.ruleSelector" -}}
{{- default (printf "namespace=%q, service=%q" .Release.Namespace (include "drs-exporter.fullname" .)) .Values.prometheusRule.settings.selector }}
{{- end }}
