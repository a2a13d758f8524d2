using System.Globalization;

namespace Centrifugo.Actors.KafkaMock;

internal sealed record TopicSpec(string Name, int Partitions);

internal sealed record MockHostOptions
{
    public int Brokers { get; init; } = 3;
    public IReadOnlyList<TopicSpec> Topics { get; init; } = [];
    public IReadOnlyList<int> Ports { get; init; } = [];
    public int RebalanceDelayMs { get; init; }
    public string? BootstrapFile { get; init; }
    public bool ExitOnStdinEof { get; init; }

    public const string Usage =
        "kafka-mock [--brokers 3] [--topic name:partitions]... [--ports 9092,9093,9094] [--rebalance-delay-ms 0]\n" +
        "           [--bootstrap-file path] [--exit-on-stdin-eof]\n" +
        "Prints 'BOOTSTRAP host:port,...', then reads control lines on stdin (each answered OK or ERR <reason>):\n" +
        "  down N | up N | rtt N ms | leader T P N | coord group G N | err ApiKey code... | clear ApiKey\n" +
        "  create T parts [rf] | delete T | controller N | quit\n" +
        "Stops on SIGTERM/Ctrl-C (prints STOPPED, exit 0).";

    /// <exception cref="FormatException">With a message for the user.</exception>
    public static MockHostOptions Parse(IReadOnlyList<string> args)
    {
        var options = new MockHostOptions();
        var topics = new List<TopicSpec>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new FormatException($"{arg} needs a value");
            switch (arg)
            {
                case "--brokers":
                    options = options with { Brokers = ParseInt(arg, Value(), min: 1) };
                    break;
                case "--topic":
                    topics.Add(ParseTopic(Value()));
                    break;
                case "--ports":
                    options = options with
                    {
                        Ports = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                            .Select(p => ParseInt(arg, p, min: 1))]
                    };
                    break;
                case "--rebalance-delay-ms":
                    options = options with { RebalanceDelayMs = ParseInt(arg, Value(), min: 0) };
                    break;
                case "--bootstrap-file":
                    options = options with { BootstrapFile = Value() };
                    break;
                case "--exit-on-stdin-eof":
                    options = options with { ExitOnStdinEof = true };
                    break;
                default:
                    throw new FormatException($"unknown option {arg}");
            }
        }

        if (options.Ports.Count > 0 && options.Ports.Count != options.Brokers)
        {
            throw new FormatException($"--ports lists {options.Ports.Count} ports for {options.Brokers} brokers");
        }

        return options with { Topics = topics };
    }

    private static TopicSpec ParseTopic(string value)
    {
        var colon = value.LastIndexOf(':');
        return colon <= 0
            ? new TopicSpec(value, 1)
            : new TopicSpec(value[..colon], ParseInt("--topic", value[(colon + 1)..], min: 1));
    }

    internal static int ParseInt(string what, string value, int min) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min
            ? n
            : throw new FormatException($"{what}: '{value}' is not an integer >= {min}");
}
