{{/* The release's base name. */}}
{{- define "meridian.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "meridian.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meridian
{{- end -}}

{{/* The selector of one component: (dict "root" $ "component" "control"). */}}
{{- define "meridian.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image reference. */}}
{{- define "meridian.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* A service's settings: the defaults with its own overrides. (dict "root" $ "name" "control") */}}
{{- define "meridian.service" -}}
{{- $own := omit (index .root.Values.services .name) "enabled" -}}
{{- toYaml (mustMergeOverwrite (deepCopy .root.Values.defaults) $own) -}}
{{- end -}}

{{/* Whether a service calls the Kubernetes API server (discovery, leases). */}}
{{- define "meridian.callsApi" -}}
{{- if or (and (eq .name "control") .root.Values.discovery.enabled) (and (has .name (list "control" "workflow" "service-level" "relationship" "governance")) .root.Values.leaderElection.enabled) -}}
true
{{- end -}}
{{- end -}}

{{/* The pod security context of the restricted profile. */}}
{{- define "meridian.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container security context of the restricted profile. */}}
{{- define "meridian.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The environment every Meridian container gets: (dict "root" $ "name" "control"). */}}
{{- define "meridian.env" -}}
- name: MERIDIAN_CONFIG
  value: /etc/meridian/config.yaml
- name: MERIDIAN__DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required" .root.Values.database.existingSecret }}
      key: {{ index .root.Values.database.urlKeys .name }}
- name: MERIDIAN__BUS__URL
  valueFrom:
    secretKeyRef:
      name: {{ required "bus.existingSecret is required" .root.Values.bus.existingSecret }}
      key: {{ .root.Values.bus.urlKey }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{/* The configuration file every Meridian container reads. */}}
{{- define "meridian.configYaml" -}}
{{- $base := dict
  "http" (dict "bind" "0.0.0.0:8080")
  "telemetry" (dict "log_format" "json")
  "bus" (dict "kind" "rabbitmq")
  "auth" (dict "mode" "jwks" "jwks_url" .Values.auth.jwksUrl "issuer" .Values.auth.issuer "audience" .Values.auth.audience "roles_claim" .Values.auth.rolesClaim)
  "workflow" (dict "definitions_dir" "/usr/share/meridian/workflows")
  "leader_election" (dict "kind" (ternary "lease" "database" .Values.leaderElection.enabled) "lease_duration_seconds" .Values.leaderElection.leaseDurationSeconds "lease_prefix" (include "meridian.fullname" .))
}}
{{- $_ := set $base "relationship" (dict "service_level_url" (printf "http://%s-service-level" (include "meridian.fullname" .))) }}
{{- $public := .Values.publicUrl }}
{{- if and (not $public) .Values.ingress.enabled }}
{{- $public = printf "%s://%s" (ternary "https" "http" (not (empty .Values.ingress.tlsSecret))) .Values.ingress.host }}
{{- end }}
{{- if $public }}
{{- $_ := set (get $base "relationship") "public_url" $public }}
{{- $_ := set $base "notifier" (dict "public_url" $public) }}
{{- end }}
{{- if .Values.changeGate.enabled }}
{{- $_ := set $base "control" (dict "change_gate" (dict "enabled" true "bind" "0.0.0.0:8443" "tls_cert_file" "/etc/meridian/tls/tls.crt" "tls_key_file" "/etc/meridian/tls/tls.key" "break_glass_groups" .Values.changeGate.breakGlassGroups)) }}
{{- end }}
{{- if .Values.discovery.enabled }}
{{- $control := default dict (get $base "control") }}
{{- $_ := set $control "discovery" (dict "enabled" true "owner_label" .Values.discovery.ownerLabel "service_label" .Values.discovery.serviceLabel) }}
{{- $_ := set $base "control" $control }}
{{- end }}
{{- toYaml (mustMergeOverwrite $base (deepCopy .Values.config)) }}
{{- end -}}
