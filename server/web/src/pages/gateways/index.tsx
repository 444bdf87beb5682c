// The "gateways" page (#/gateways): a placeholder until its screen is built here.
import { Placeholder } from "../../components/Placeholder";
import type { PageProps } from "../../routes";

export default function Page(_props: PageProps) {
  return <Placeholder titleKey="nav.gateways" />;
}
