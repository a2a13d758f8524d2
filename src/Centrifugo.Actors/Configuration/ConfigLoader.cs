using System.Collections;

namespace Centrifugo.Actors.Configuration;

/// <summary>Reads a Centrifugo-format JSON config + env overrides. STUB: implemented by the configuration work package.</summary>
internal static class ConfigLoader
{
    /// <summary>Loads, applies env overrides and defaults, validates. Throws <see cref="ConfigException"/>.</summary>
    public static NodeOptions Load(string path, IDictionary environment) => throw new NotImplementedException();

    /// <summary>Same from JSON text (tests, stdin).</summary>
    public static NodeOptions LoadFromJson(string json, IDictionary environment) => throw new NotImplementedException();

    /// <summary>The effective configuration as indented JSON in Centrifugo's key names, every secret replaced by "***".</summary>
    public static string ToRedactedJson(NodeOptions options) => throw new NotImplementedException();
}
