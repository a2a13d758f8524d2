namespace Centrifugo.Actors.Configuration;

/// <summary>
/// Top-level keys of Centrifugo's own configuration, so a user can point us at an unchanged Centrifugo config:
/// these keys are accepted and ignored; any other key that is not ours is a typo and fails start-up.
/// Sources: v6 <c>internal/config/config.go</c> (struct <c>Config</c>) plus Centrifugo PRO v6 sections, and the v5
/// flat keys (v5.4.9 <c>main.go</c> defaults and viper reads, and the official v5→v6 key converter), read at
/// centrifugal/centrifugo commit f25c7abd.
/// </summary>
internal static class CentrifugoKeys
{
    /// <summary>v6 sections (OSS + PRO), also the candidates for "did you mean" hints.</summary>
    public static readonly IReadOnlySet<string> V6 = new HashSet<string>(StringComparer.Ordinal)
    {
        "http_server", "log", "engine", "broker", "presence_manager", "map_broker", "client", "channel", "rpc",
        "proxies", "http_api", "grpc_api", "consumers", "websocket", "sse", "http_stream", "webtransport",
        "uni_sse", "uni_http_stream", "uni_websocket", "uni_grpc", "emulation", "admin", "prometheus", "health",
        "swagger", "debug", "dev", "init", "opentelemetry", "graphite", "usage_stats", "node", "shutdown",
        "pid_file", "enable_unreleased_features",
        // Centrifugo PRO v6
        "license", "database", "cache", "clickhouse_analytics", "user_tokens_invalidate", "user_block",
        "token_revoke", "push_notifications", "distributed_rate_limit", "user_status", "state", "singleflight",
        "brokers", "presence_managers",
    };

    /// <summary>v5 flat keys (OSS + PRO).</summary>
    public static readonly IReadOnlySet<string> V5 = new HashSet<string>(StringComparer.Ordinal)
    {
        "address", "admin", "admin_external", "admin_handler_prefix", "admin_insecure", "admin_oidc", "admin_password", "admin_secret",
        "admin_web_path", "admin_web_proxy_address", "allow_anonymous_connect_without_token", "allow_history_for_anonymous",
        "allow_history_for_client", "allow_history_for_subscriber", "allow_positioning", "allow_presence_for_anonymous",
        "allow_presence_for_client", "allow_presence_for_subscriber", "allow_publish_for_anonymous", "allow_publish_for_client",
        "allow_publish_for_subscriber", "allow_recovery", "allow_subscribe_for_anonymous", "allow_subscribe_for_client",
        "allow_user_limited_channels", "allowed_delta_types", "allowed_origins", "api_disable", "api_error_mode", "api_external",
        "api_handler_prefix", "api_insecure", "api_key", "broker", "broker_name", "brokers", "cache", "cache_empty_proxy_name",
        "channel_max_length", "channel_namespace_boundary", "channel_namespace_for_transport_messages_received",
        "channel_namespace_for_transport_messages_sent", "channel_patterns", "channel_private_prefix", "channel_regex",
        "channel_user_boundary", "channel_user_separator", "clickhouse_analytics", "client_channel_limit",
        "client_channel_position_check_delay", "client_channel_position_max_time_lag", "client_command_rate_limit", "client_concurrency",
        "client_connect_code_to_unidirectional_disconnect", "client_connect_include_server_time", "client_connection_limit",
        "client_connection_rate_limit", "client_error_limits", "client_expired_close_delay", "client_expired_sub_close_delay",
        "client_history_max_publication_limit", "client_insecure", "client_insecure_skip_token_signature_verify",
        "client_max_messages_in_frame", "client_presence_update_interval", "client_queue_initial_cap", "client_queue_max_size",
        "client_recovery_max_publication_limit", "client_reply_without_queue", "client_stale_close_delay", "client_user_connection_limit",
        "client_user_id_http_header", "client_write_delay", "connect_proxy_name", "consumers", "database", "debug", "delta_publish",
        "disallow_anonymous_connection_tokens", "distributed_rate_limit", "emulation_handler_prefix", "emulation_max_request_body_size",
        "enable_unreleased_features", "engine", "force_positioning", "force_push_join_leave", "force_recovery", "force_recovery_mode",
        "global_history_meta_ttl", "global_presence_ttl", "global_redis_presence_user_mapping", "gomaxprocs", "granular_proxy_mode",
        "graphite", "graphite_host", "graphite_interval", "graphite_port", "graphite_prefix", "graphite_tags", "grpc_api",
        "grpc_api_address", "grpc_api_error_mode", "grpc_api_key", "grpc_api_max_receive_message_size", "grpc_api_port",
        "grpc_api_reflection", "grpc_api_tls", "grpc_api_tls_cert", "grpc_api_tls_cert_pem", "grpc_api_tls_client_ca",
        "grpc_api_tls_client_ca_pem", "grpc_api_tls_disable", "grpc_api_tls_insecure_skip_verify", "grpc_api_tls_key",
        "grpc_api_tls_key_pem", "grpc_api_tls_root_ca", "grpc_api_tls_root_ca_pem", "grpc_api_tls_server_name", "health",
        "health_handler_prefix", "history_cel", "history_meta_ttl", "history_size", "history_ttl", "http3", "http_stream",
        "http_stream_handler_prefix", "http_stream_max_request_body_size", "internal_address", "internal_port", "join_leave",
        "keep_latest_publication", "license", "log_file", "log_level", "name", "namespaces", "nats_allow_wildcards", "nats_dial_timeout",
        "nats_prefix", "nats_raw_mode", "nats_url", "nats_write_timeout", "node_info_metrics_aggregate_interval", "opentelemetry",
        "opentelemetry_api", "opentelemetry_consuming", "partitioned_presence", "pid_file", "ping_interval", "pong_timeout", "port",
        "presence", "presence_cel", "presence_manager_name", "presence_managers", "prometheus", "prometheus_handler_prefix", "proxies",
        "proxy_binary_encoding", "proxy_cache_empty_endpoint", "proxy_cache_empty_timeout", "proxy_connect_endpoint",
        "proxy_connect_timeout", "proxy_grpc_cert_file", "proxy_grpc_compression", "proxy_grpc_credentials_key",
        "proxy_grpc_credentials_value", "proxy_grpc_metadata", "proxy_grpc_tls", "proxy_http_headers", "proxy_http_status_code_transforms",
        "proxy_include_connection_meta", "proxy_publish", "proxy_publish_endpoint", "proxy_publish_timeout", "proxy_refresh_endpoint",
        "proxy_refresh_timeout", "proxy_rpc_endpoint", "proxy_rpc_timeout", "proxy_state_endpoint", "proxy_state_timeout",
        "proxy_static_http_headers", "proxy_stream_subscribe", "proxy_sub_refresh", "proxy_sub_refresh_endpoint",
        "proxy_sub_refresh_timeout", "proxy_subscribe", "proxy_subscribe_endpoint", "proxy_subscribe_stream",
        "proxy_subscribe_stream_bidirectional", "proxy_subscribe_stream_endpoint", "proxy_subscribe_stream_timeout",
        "proxy_subscribe_timeout", "publish_cel", "publish_proxy_name", "push_notifications", "redis_address", "redis_client_name",
        "redis_cluster_address", "redis_db", "redis_force_resp2", "redis_password", "redis_prefix", "redis_presence_hash_field_ttl",
        "redis_sentinel_address", "redis_sentinel_client_name", "redis_sentinel_master_name", "redis_sentinel_password",
        "redis_sentinel_tls", "redis_sentinel_tls_cert", "redis_sentinel_tls_cert_pem", "redis_sentinel_tls_client_ca",
        "redis_sentinel_tls_client_ca_pem", "redis_sentinel_tls_insecure_skip_verify", "redis_sentinel_tls_key",
        "redis_sentinel_tls_key_pem", "redis_sentinel_tls_root_ca", "redis_sentinel_tls_root_ca_pem", "redis_sentinel_tls_server_name",
        "redis_sentinel_user", "redis_tls", "redis_tls_cert", "redis_tls_cert_pem", "redis_tls_client_ca", "redis_tls_client_ca_pem",
        "redis_tls_insecure_skip_verify", "redis_tls_key", "redis_tls_key_pem", "redis_tls_root_ca", "redis_tls_root_ca_pem",
        "redis_tls_server_name", "redis_use_lists", "redis_user", "redis_user_command_rate_limit", "refresh_proxy_name",
        "rpc_namespace_boundary", "rpc_namespaces", "rpc_ping", "rpc_ping_method", "rpc_proxy_name", "separate_subscription_token_config",
        "shared_position_sync", "shutdown_termination_delay", "shutdown_timeout", "sockjs", "sockjs_handler_prefix", "sockjs_url", "sse",
        "sse_handler_prefix", "sse_max_request_body_size", "state_events", "state_vacated_event_delay", "sub_refresh_proxy_name",
        "subscribe_cel", "subscribe_proxy_name", "subscribe_stream_proxy_name", "subscription_token_audience",
        "subscription_token_audience_regex", "subscription_token_ecdsa_public_key", "subscription_token_hmac_secret_key",
        "subscription_token_issuer", "subscription_token_issuer_regex", "subscription_token_jwks_public_endpoint",
        "subscription_token_rsa_public_key", "subscription_token_user_id_claim", "swagger", "swagger_handler_prefix", "tarantool_address",
        "tarantool_mode", "tarantool_password", "tarantool_user", "tls", "tls_autocert", "tls_autocert_cache_dir", "tls_autocert_email",
        "tls_autocert_host_whitelist", "tls_autocert_http", "tls_autocert_http_addr", "tls_autocert_server_name", "tls_cert",
        "tls_cert_pem", "tls_client_ca", "tls_client_ca_pem", "tls_external", "tls_insecure_skip_verify", "tls_key", "tls_key_pem",
        "tls_root_ca", "tls_root_ca_pem", "tls_server_name", "token_audience", "token_audience_regex", "token_ecdsa_public_key",
        "token_hmac_secret_key", "token_issuer", "token_issuer_regex", "token_jwks_public_endpoint", "token_revoke", "token_rsa_public_key",
        "token_user_id_claim", "uni_grpc", "uni_grpc_address", "uni_grpc_max_receive_message_size", "uni_grpc_port", "uni_grpc_tls",
        "uni_grpc_tls_cert", "uni_grpc_tls_cert_pem", "uni_grpc_tls_client_ca", "uni_grpc_tls_client_ca_pem", "uni_grpc_tls_disable",
        "uni_grpc_tls_insecure_skip_verify", "uni_grpc_tls_key", "uni_grpc_tls_key_pem", "uni_grpc_tls_root_ca", "uni_grpc_tls_root_ca_pem",
        "uni_grpc_tls_server_name", "uni_http_stream", "uni_http_stream_connect_code_to_http_response", "uni_http_stream_handler_prefix",
        "uni_http_stream_max_request_body_size", "uni_sse", "uni_sse_connect_code_to_http_response", "uni_sse_handler_prefix",
        "uni_sse_max_request_body_size", "uni_websocket", "uni_websocket_compression", "uni_websocket_compression_level",
        "uni_websocket_compression_min_size", "uni_websocket_handler_prefix", "uni_websocket_message_size_limit",
        "uni_websocket_read_buffer_size", "uni_websocket_use_write_buffer_pool", "uni_websocket_write_buffer_size",
        "uni_websocket_write_timeout", "usage_stats_disable", "use_singleflight", "user_block", "user_command_rate_limit",
        "user_personal_channel_namespace", "user_personal_single_connection", "user_status", "user_subscribe_to_personal",
        "user_tokens_invalidate", "websocket_compression", "websocket_compression_level", "websocket_compression_min_size",
        "websocket_compression_prepared_message_cache_size", "websocket_disable", "websocket_handler_prefix",
        "websocket_message_size_limit", "websocket_read_buffer_size", "websocket_use_write_buffer_pool", "websocket_write_buffer_size",
        "websocket_write_timeout", "webtransport", "webtransport_handler_prefix",
    };

    /// <summary>Keys of Centrifugo's own <c>admin</c> section (web UI), which shares its name with ours.</summary>
    public static readonly IReadOnlySet<string> AdminSection = new HashSet<string>(StringComparer.Ordinal)
    {
        "enabled", "handler_prefix", "password", "secret", "insecure", "web_path", "web_proxy_address", "external",
        "oidc",
    };

    public static bool IsKnownTopLevel(string key) => V6.Contains(key) || V5.Contains(key);
}
