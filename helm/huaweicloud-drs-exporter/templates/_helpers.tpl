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
{{- if eq $c.type "token" }}
{{- $_ := set $config "auth" (dict "token_file" (printf "%s/%s" $dir $c.keys.token)) }}
{{- else if eq $c.type "password" }}
{{- $auth := dict "username" $c.username "domain_name" $c.domainName "password_file" (printf "%s/%s" $dir $c.keys.password) }}
{{- if $c.iamEndpoint }}{{- $_ := set $auth "iam_endpoint" $c.iamEndpoint }}{{- end }}
{{- $_ := set $config "auth" $auth }}
{{- end }}
{{- toYaml $config }}
{{- end }}
