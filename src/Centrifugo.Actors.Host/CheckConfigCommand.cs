using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Host;

/// <summary>`check-config`: exit 0 and the redacted effective configuration, or exit 1 and the one error.</summary>
internal static class CheckConfigCommand
{
    public static int Run(string path, TextWriter output, TextWriter error)
    {
        try
        {
            var options = ConfigLoader.Load(path, Environment.GetEnvironmentVariables());
            output.WriteLine(ConfigLoader.ToRedactedJson(options));
            return 0;
        }
        catch (ConfigException ex)
        {
            error.WriteLine($"configuration error: {ex.Message}");
            return 1;
        }
    }
}
