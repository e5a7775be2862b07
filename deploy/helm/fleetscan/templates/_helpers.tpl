{{/*
The chart's name, or nameOverride.
*/}}
{{- define "fleetscan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else the release name
when it already holds the chart's name (release "fleetscan" makes
fleetscan-server and fleetscan-worker), else <release>-<chart>. Kept to 56
characters, so that -server and -worker still fit in 63.
*/}}
{{- define "fleetscan.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- $name := include "fleetscan.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 56 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fleetscan.server.fullname" -}}
{{- printf "%s-server" (include "fleetscan.fullname" .) }}
{{- end }}

{{- /* With store.postgres: the headless Service that governs the server's
StatefulSet, whose name resolves to every ready replica and gives each pod
a name of its own (<server>-0.<headless>.<namespace>.svc). */ -}}
{{- define "fleetscan.server.headless" -}}
{{- printf "%s-headless" (include "fleetscan.server.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fleetscan.worker.fullname" -}}
{{- printf "%s-worker" (include "fleetscan.fullname" .) }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "fleetscan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fleetscan
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/*
The server's selector: stable across upgrades, since a StatefulSet's
selector cannot change.
*/}}
{{- define "fleetscan.server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleetscan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "fleetscan.server.labels" -}}
{{ include "fleetscan.labels" . }}
{{ include "fleetscan.server.selectorLabels" . }}
{{- end }}

{{- define "fleetscan.worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleetscan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "fleetscan.worker.labels" -}}
{{ include "fleetscan.labels" . }}
{{ include "fleetscan.worker.selectorLabels" . }}
{{- end }}

{{/*
An image reference: repository@digest when a digest is set, else
repository:tag with the chart's appVersion as the default tag. Called with
the component's image values and the root context:
  include "fleetscan.image" (list .Values.server.image $)
*/}}
{{- define "fleetscan.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/*
The pod and container security settings both components run with: the
namespace's restricted Pod Security Standard and fleetscan's own checks
pass them. They are not values on purpose.
*/}}
{{- define "fleetscan.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
appArmorProfile: {type: RuntimeDefault}
{{- end }}

{{- define "fleetscan.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end }}

{{/*
Scheduling fields of a pod spec from a component's values.
*/}}
{{- define "fleetscan.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
