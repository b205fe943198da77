{{/* Names: <release>-<chart>, or the release name when it already contains the chart's. */}}
{{- define "execplanner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "execplanner.fullname" -}}
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

{{- define "execplanner.operatorName" -}}
{{- printf "%s-operator" (include "execplanner.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "execplanner.plannerName" -}}
{{- printf "%s-planner" (include "execplanner.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "execplanner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "execplanner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "execplanner.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "execplanner.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "execplanner.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Environment shared by both processes. */}}
{{- define "execplanner.commonEnv" -}}
- name: EXECPLANNER_ALLOWED_REGISTRIES
  value: {{ .Values.allowedRegistries | toJson | quote }}
- name: EXECPLANNER_ALLOWED_CHART_REPOSITORIES
  value: {{ .Values.allowedChartRepositories | toJson | quote }}
- name: EXECPLANNER_ALLOW_LOCAL_CHARTS
  value: {{ .Values.allowLocalCharts | quote }}
- name: EXECPLANNER_HELM
  value: helm
- name: EXECPLANNER_HELM_HOME
  value: /tmp/helm
- name: EXECPLANNER_HELM_TIMEOUT_SECONDS
  value: {{ .Values.charts.helmTimeoutSeconds | quote }}
- name: EXECPLANNER_HELM_START_TIMEOUT_SECONDS
  value: {{ .Values.charts.startTimeoutSeconds | int64 | quote }}
- name: EXECPLANNER_CHART_MISSING_REQUESTS
  value: {{ .Values.charts.missingRequests | quote }}
- name: EXECPLANNER_RENDER_TIMEOUT_SECONDS
  value: {{ .Values.charts.renderTimeoutSeconds | quote }}
- name: EXECPLANNER_CHART_MAX_BYTES
  value: {{ .Values.charts.maxChartBytes | int64 | quote }}
- name: EXECPLANNER_RENDER_CONCURRENCY
  value: {{ .Values.charts.renderConcurrency | int64 | quote }}
- name: EXECPLANNER_RENDER_QUEUE
  value: {{ .Values.charts.renderQueue | int64 | quote }}
- name: PYTHONUNBUFFERED
  value: "1"
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
# Writable scratch (the root filesystem is read-only): helm's cache and config live here.
- name: HOME
  value: /tmp
{{- end }}

{{/*
The RBAC of a component (operator, planner), translated from deploy/<component>-rbac.yaml
(files/<component>-rbac.yaml is a symlink to it): that file is the one source of truth,
used as is by `kubectl apply -f deploy/` and the tests, and rendered here with the
release's names. Each ClusterRole, Role and their bindings keep their rules and roleRefs;
names starting with "execplanner-<component>" take the release's name for the component in
its place; the ServiceAccount execplanner-system/execplanner-<component> becomes the
chart's; the Namespace and ServiceAccount documents are skipped (helm's release namespace
and serviceaccounts.yaml stand for them). Anything the translation does not know fails the
render, so a change to the file is never dropped silently.
Call with (list $ "operator") or (list $ "planner").
*/}}
{{- define "execplanner.rbacFromDeploy" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $file := printf "deploy/%s-rbac.yaml" $component }}
{{- $source := printf "execplanner-%s" $component }}
{{- $target := printf "%s-%s" (include "execplanner.fullname" $root) $component | trunc 63 | trimSuffix "-" }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get (printf "files/%s-rbac.yaml" $component)) -1 }}
{{- $o := fromYaml $doc }}
{{- if and $o $o.kind }}
{{- if has $o.kind (list "Namespace" "ServiceAccount") }}
{{- else if has $o.kind (list "ClusterRole" "Role" "ClusterRoleBinding" "RoleBinding") }}
{{- $meta := dict "name" (include "execplanner.rbacName" (list $o.metadata.name $source $target $file)) }}
{{- if $o.metadata.namespace }}
{{- $_ := set $meta "namespace" (ternary $root.Release.Namespace $o.metadata.namespace (eq $o.metadata.namespace "execplanner-system")) }}
{{- end }}
{{- $_ := set $meta "labels" (merge (include "execplanner.labels" $root | fromYaml) (dict "app.kubernetes.io/component" $component) ($o.metadata.labels | default dict)) }}
{{- with $o.metadata.annotations }}
{{- $_ := set $meta "annotations" . }}
{{- end }}
{{- $out := omit $o "metadata" "apiVersion" "kind" }}
{{- if $o.roleRef }}
{{- if hasPrefix $source $o.roleRef.name }}{{/* a role of this file; any other (a built-in one) is kept */}}
{{- $_ := set $out "roleRef" (merge (dict "name" (include "execplanner.rbacName" (list $o.roleRef.name $source $target $file))) $o.roleRef) }}
{{- end }}
{{- end }}
{{- if hasKey $o "subjects" }}
{{- $subjects := list }}
{{- range $s := $o.subjects }}
{{- if and (eq $s.kind "ServiceAccount") (eq $s.name $source) (eq $s.namespace "execplanner-system") }}
{{- $subjects = append $subjects (dict "kind" "ServiceAccount" "name" $target "namespace" $root.Release.Namespace) }}
{{- else }}
{{- fail (printf "%s: %s %s binds %s %s/%s, which the chart cannot translate" $file $o.kind $o.metadata.name $s.kind ($s.namespace | default "") $s.name) }}
{{- end }}
{{- end }}
{{- $_ := set $out "subjects" $subjects }}
{{- end }}
---
apiVersion: {{ $o.apiVersion }}
kind: {{ $o.kind }}
metadata:
{{- toYaml $meta | nindent 2 }}
{{ toYaml $out }}
{{- else }}
{{- fail (printf "%s: the chart does not know how to render a %s (%s)" $file $o.kind $o.metadata.name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* (list NAME SOURCE TARGET FILE): NAME with its SOURCE prefix replaced by TARGET. */}}
{{- define "execplanner.rbacName" -}}
{{- $name := index . 0 }}
{{- $source := index . 1 }}
{{- if hasPrefix $source $name }}
{{- printf "%s%s" (index . 2) (trimPrefix $source $name) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- fail (printf "%s: the name %q does not start with %s" (index . 3) $name $source) }}
{{- end }}
{{- end }}
