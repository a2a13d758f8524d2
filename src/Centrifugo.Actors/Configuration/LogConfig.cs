using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// The <c>log</c> section: Centrifugo v6's own <c>log.level</c> (none, trace, debug, info, warn, error; env
/// CENTRIFUGO_LOG_LEVEL) and our <c>log.format</c> (text, json; env CENTRIFUGO_ACTORS_LOG_FORMAT).
/// CENTRIFUGO_ACTORS_LOG_LEVEL wins over CENTRIFUGO_LOG_LEVEL. Centrifugo's other log keys are ignored.
/// </summary>
internal static class LogConfig
{
    private static readonly string[] Levels = ["none", "trace", "debug", "info", "warn", "error"];
    private static readonly string[] Formats = ["text", "json"];

    /// <summary>Centrifugo's level names (none, trace, debug, info, warn, error), any case; null for another word.</summary>
    public static LogLevel? ParseLevel(string level) => level.ToLowerInvariant() switch
    {
        "none" => LogLevel.None,
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" => LogLevel.Information,
        "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        _ => null,
    };

    /// <summary>Centrifugo's name of a level.</summary>
    public static string LevelName(LogLevel level) => level switch
    {
        LogLevel.None => "none",
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Warning => "warn",
        LogLevel.Error or LogLevel.Critical => "error",
        _ => "info",
    };

    public static string LevelError(string level) =>
        $"level \"{level}\" is not one of {string.Join(", ", Levels)}{JsonFields.Suggest(level, Levels)}";

    public static LogOptions Bind(JsonObject root, EnvOverrides env)
    {
        static ConfigException Fail(string m) => new($"in log: {m}");
        var section = root["log"] as JsonObject;
        string? Read(string key)
        {
            var node = section?[key];
            if (node is null)
            {
                return null;
            }
            return node is JsonValue v && v.TryGetValue<string>(out var s)
                ? s
                : throw Fail($"{key} must be a string, got {JsonFields.Describe(node)}");
        }

        var level = env.Get("CENTRIFUGO_ACTORS_LOG_LEVEL") ?? env.Get("CENTRIFUGO_LOG_LEVEL") ?? Read("level") ?? "info";
        var format = env.Get("CENTRIFUGO_ACTORS_LOG_FORMAT") ?? Read("format") ?? "text";
        return new LogOptions
        {
            Level = ParseLevel(level) ?? throw Fail(LevelError(level)),
            Format = format.ToLowerInvariant() switch
            {
                "text" => LogFormat.Text,
                "json" => LogFormat.Json,
                _ => throw Fail($"format \"{format}\" is not one of {string.Join(", ", Formats)}{JsonFields.Suggest(format, Formats)}"),
            },
        };
    }

    public static void Write(Utf8JsonWriter w, LogOptions log)
    {
        w.WriteStartObject("log");
        w.WriteString("level", LevelName(log.Level));
        w.WriteString("format", log.Format == LogFormat.Json ? "json" : "text");
        w.WriteEndObject();
    }
}
